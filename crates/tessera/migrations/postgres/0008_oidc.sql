-- OpenID Connect: clients for applications, browser sessions, authorization codes, consents,
-- and token sessions tied to the browser session they were issued through.
--
-- A client's redirect URIs are JSON arrays like its scopes, roles and audiences: a handful of
-- strings, always read with the client and compared in memory (exact matching), never searched
-- by, and replaced whole by PATCH; a child table would cost a second read on every
-- authorization request for nothing.
--
-- A public client has no secret: `secret_hash` becomes nullable, and a CHECK keeps "public"
-- and "has no secret" the same thing.
ALTER TABLE clients ALTER COLUMN secret_hash DROP NOT NULL;
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD CONSTRAINT clients_public_has_no_secret CHECK (public = (secret_hash IS NULL));

-- The browser session behind the `tessera_session` cookie. `id` is the public `sid` of
-- id_tokens; the cookie holds a separate 256-bit secret of which only the SHA-256 is kept.
-- Signing out deletes the row.
CREATE TABLE browser_sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  BYTEA NOT NULL CONSTRAINT browser_sessions_secret_key UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    amr          TEXT NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- Authorization codes, by the SHA-256 of the code. No foreign keys (each would cost an index
-- on a table written twice per sign-in): a code of a deleted account or browser session is
-- refused when consumed, one of a deleted client when its client authenticates, and pruning
-- drops them all. `replayed_at` records a second use, so that recording the token session
-- issued from the code afterwards notices it.
CREATE TABLE authorization_codes (
    hash               BYTEA PRIMARY KEY,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    browser_session_id TEXT NOT NULL,
    redirect_uri       TEXT,
    code_challenge     TEXT NOT NULL,
    nonce              TEXT,
    scope              TEXT NOT NULL DEFAULT '[]',
    auth_time          BIGINT NOT NULL,
    amr                TEXT NOT NULL DEFAULT '[]',
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    replayed_at        BIGINT,
    token_session_id   TEXT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

-- What a person allowed an application: the scopes granted, per person and client.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id ON consents (client_id);

-- Token sessions issued to an application: its client (NULL: the first-party client
-- `tessera`), the scopes granted, the browser session they were issued through (signing out
-- of it ends them unless `offline`, i.e. offline_access was granted). No foreign key: ending a
-- browser session deletes it and then ends its token sessions in one transaction, and a token
-- session is only inserted while its browser session exists (see the store).
ALTER TABLE sessions ADD COLUMN client_id TEXT;
ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN browser_session_id TEXT;
ALTER TABLE sessions ADD COLUMN offline BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX sessions_browser_session_id ON sessions (browser_session_id);
CREATE INDEX sessions_client_id ON sessions (client_id);
