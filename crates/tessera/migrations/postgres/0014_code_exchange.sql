-- Exchanging an authorization code in one statement.
--
-- The token endpoint inserts one row here, with everything the token session it starts needs,
-- under the conditions that make the exchange valid (the code unspent and unexpired, the
-- account as it was read, the browser session still there, those rows locked by the insert);
-- this trigger then spends the code, starts the token session with its first refresh token,
-- and deletes the row, all within that statement. One round trip instead of a transaction of
-- five; the same statement runs on SQLite, where the round trips held its single writer. The
-- table is therefore always empty between statements.
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
    refresh_expires_at BIGINT NOT NULL
);

CREATE FUNCTION code_exchanges_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE authorization_codes SET used_at = NEW.created_at, token_session_id = NEW.session_id
        WHERE hash = NEW.code_hash;
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
