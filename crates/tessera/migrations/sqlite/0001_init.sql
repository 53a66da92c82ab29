-- People, their sessions and refresh tokens, the revocation feed, signing keys.

CREATE TABLE users (
    id                TEXT PRIMARY KEY NOT NULL,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    username          TEXT CONSTRAINT users_username_key UNIQUE,
    password_hash     TEXT NOT NULL,
    roles             TEXT NOT NULL DEFAULT '[]',
    disabled          INTEGER NOT NULL DEFAULT 0,
    tokens_not_before INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Append-only; `seq` is the feed cursor. `not_before` only for subjects, `exp` in seconds.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('token', 'session', 'subject')),
    value      TEXT NOT NULL,
    not_before INTEGER,
    exp        INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX revocations_exp ON revocations (exp);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY NOT NULL,
    alg         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('next', 'active', 'retiring')),
    private_key BLOB,
    encrypted   INTEGER NOT NULL DEFAULT 0,
    public_jwk  TEXT,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
-- At most one active and one next key, whatever races between instances.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (status) WHERE status = 'next';

CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
