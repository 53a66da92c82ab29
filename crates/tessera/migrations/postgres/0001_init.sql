-- People, their sessions and refresh tokens, the revocation feed, signing keys.

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    username          TEXT CONSTRAINT users_username_key UNIQUE,
    password_hash     TEXT NOT NULL,
    roles             TEXT NOT NULL DEFAULT '[]',
    disabled          BOOLEAN NOT NULL DEFAULT FALSE,
    tokens_not_before BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Append-only; `seq` is the feed cursor. Writers take an advisory lock so entries become
-- visible in `seq` order and a reader's cursor never skips one still being committed.
CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('token', 'session', 'subject')),
    value      TEXT NOT NULL,
    not_before BIGINT,
    exp        BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_exp ON revocations (exp);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('next', 'active', 'retiring')),
    private_key BYTEA,
    encrypted   BOOLEAN NOT NULL DEFAULT FALSE,
    public_jwk  TEXT,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (status) WHERE status = 'next';

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
