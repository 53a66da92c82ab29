-- Second factors: TOTP, recovery codes, passkeys, and the sign-ins waiting for one.
--
-- A TOTP secret is sealed with the master key when one is configured (`sealed`), like the
-- signing keys; it is `pending` until its first code confirms it. `last_step` is the newest
-- 30-second step whose code was accepted: accepting a code raises it in one conditional
-- write, so a code works once even when two requests race.
CREATE TABLE totp_secrets (
    user_id      TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB NOT NULL,
    sealed       INTEGER NOT NULL DEFAULT 0,
    confirmed_at INTEGER,
    last_step    INTEGER,
    created_at   INTEGER NOT NULL
);

-- Recovery codes, by the SHA-256 of each (they are random, 60 bits and more); a used one keeps
-- its row with `used_at` so the set can be counted.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, hash)
);

-- A password sign-in waiting for its second factor, by the SHA-256 of its `mfa_token`: single
-- use (deleted when finished), five minutes, five wrong codes. `channel` says what it signs
-- in to (`api` or `page`).
CREATE TABLE mfa_challenges (
    hash       BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);

-- Passkeys (WebAuthn credentials): the credential as the WebAuthn library serialises it,
-- with its id for lookups and a name the person chose.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL CONSTRAINT passkeys_credential_key UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- WebAuthn ceremony state between its two requests, so any instance finishes what another
-- began: single use (deleted when taken), five minutes.
CREATE TABLE webauthn_challenges (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);

-- How a token session's person signed in (`amr`), so refreshed tokens keep saying it.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';

-- Whether the person has a second factor (a confirmed TOTP secret or a passkey), kept by every
-- write that changes their factors, so reading an account costs no extra query.
ALTER TABLE users ADD COLUMN two_factor INTEGER NOT NULL DEFAULT 0;
