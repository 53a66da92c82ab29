-- Authorization codes are sealed (`service/codes.rs`): a code carries what it was issued for,
-- encrypted and authenticated under a key every instance shares, so issuing one writes
-- nothing. `authorization_codes` now holds only spent codes, by hash: the exchange's trigger
-- inserts the row when it starts the token session, and a code whose hash is already there is
-- a replay (two racing exchanges of one code: the second's insert violates the primary key).
--
-- Codes issued before this migration were random and are only in this table: they stop
-- working (they lived for 60 seconds).
DELETE FROM authorization_codes WHERE used_at IS NULL;

DROP TRIGGER code_exchanges_apply ON code_exchanges;
DROP FUNCTION code_exchanges_apply();
DROP TABLE code_exchanges;

-- One row per exchange, inserted under the conditions that make it valid (the code not spent,
-- the account as it was read, the browser session still there, those rows locked by the
-- insert); the trigger records the code as spent, starts the token session with its first
-- refresh token, and deletes the row.
CREATE TABLE code_exchanges (
    code_hash          BYTEA PRIMARY KEY,
    session_id         TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    scope              TEXT NOT NULL,
    browser_session_id TEXT NOT NULL,
    offline            BOOLEAN NOT NULL,
    amr                TEXT NOT NULL,
    ip                 TEXT,
    user_agent         TEXT,
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    refresh_hash       BYTEA NOT NULL,
    refresh_created_at BIGINT NOT NULL,
    refresh_expires_at BIGINT NOT NULL,
    redirect_uri       TEXT,
    code_challenge     TEXT NOT NULL,
    nonce              TEXT,
    auth_time          BIGINT NOT NULL,
    code_created_at    BIGINT NOT NULL,
    code_expires_at    BIGINT NOT NULL
);

CREATE FUNCTION code_exchanges_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO authorization_codes (hash, client_id, user_id, browser_session_id, redirect_uri, code_challenge, nonce, scope,
                                     auth_time, amr, created_at, expires_at, used_at, replayed_at, token_session_id)
        VALUES (NEW.code_hash, NEW.client_id, NEW.user_id, NEW.browser_session_id, NEW.redirect_uri, NEW.code_challenge,
                NEW.nonce, NEW.scope, NEW.auth_time, NEW.amr, NEW.code_created_at, NEW.code_expires_at, NEW.created_at,
                NULL, NEW.session_id);
    INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip,
                          client_id, scope, browser_session_id, offline, amr)
        VALUES (NEW.session_id, NEW.user_id, NEW.created_at, NEW.last_used_at, NEW.expires_at, NULL, NEW.user_agent,
                NEW.ip, NEW.client_id, NEW.scope, NEW.browser_session_id, NEW.offline, NEW.amr);
    INSERT INTO refresh_tokens (hash, session_id, created_at, expires_at, rotated_at)
        VALUES (NEW.refresh_hash, NEW.session_id, NEW.refresh_created_at, NEW.refresh_expires_at, NULL);
    DELETE FROM code_exchanges WHERE code_hash = NEW.code_hash;
    RETURN NULL;
END
$$;

CREATE TRIGGER code_exchanges_apply AFTER INSERT ON code_exchanges
    FOR EACH ROW EXECUTE FUNCTION code_exchanges_apply();
