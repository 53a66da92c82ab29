-- Service clients (OAuth 2.0 client credentials). The secret is stored only as SHA-256.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '[]',
    roles       TEXT NOT NULL DEFAULT '[]',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
