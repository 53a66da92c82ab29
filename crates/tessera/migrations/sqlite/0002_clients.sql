-- Service clients (OAuth 2.0 client credentials). The secret is stored only as SHA-256.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    scopes      TEXT NOT NULL DEFAULT '[]',
    roles       TEXT NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
