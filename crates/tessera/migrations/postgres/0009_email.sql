-- Email: whether an address is verified, the outbox the mail worker sends from, and the
-- single-use link tokens (verification and password reset) that mails carry.
--
-- Accounts made before this migration have never had their address checked: unverified.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

-- Every mail Tessera sends, written in the same transaction as the change that causes it.
-- The worker claims due rows (`due_at` passed, no live claim: `claimed_until` is a lease, so
-- the claim of an instance that died mid-send expires), sends them, and marks them `sent`, or
-- schedules a retry (`due_at` moves on, `attempts` counts) until it gives up (`failed`). Once
-- sent or given up, the bodies and the link are blanked: no usable link stays in the table.
-- `recipient_normalized` and `kind` count the mails of one kind to one address (per-address
-- limits).
CREATE TABLE mail_outbox (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL,
    recipient            TEXT NOT NULL,
    recipient_normalized TEXT NOT NULL,
    subject              TEXT NOT NULL,
    text_body            TEXT NOT NULL,
    html_body            TEXT NOT NULL,
    link                 TEXT,
    created_at           BIGINT NOT NULL,
    due_at               BIGINT NOT NULL,
    claimed_until        BIGINT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    status               TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    sent_at              BIGINT,
    last_error           TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, due_at);
CREATE INDEX mail_outbox_recipient ON mail_outbox (recipient_normalized, kind, created_at);

-- Links sent by mail, by the SHA-256 of their 256-bit token: `verify` proves the address
-- `email` (normalized) belongs to the person, `reset` sets a new password. Each works once
-- (`used_at`), until `expires_at`.
CREATE TABLE link_tokens (
    hash       BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('verify', 'reset')),
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX link_tokens_user_id ON link_tokens (user_id);
CREATE INDEX link_tokens_expires_at ON link_tokens (expires_at);
