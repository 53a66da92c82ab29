-- Refresh-token rotation in one statement. Each statement is a round trip to SQLite's
-- worker thread and writers go one at a time, so the rotation's old five statements
-- (begin, mark the old token, insert the new one, extend the session, commit) capped
-- refreshes at ~1,600/s on two cores. Now the insert of the successor does the rest.
ALTER TABLE refresh_tokens ADD COLUMN parent BLOB;

CREATE TRIGGER refresh_tokens_rotate AFTER INSERT ON refresh_tokens
BEGIN
    UPDATE refresh_tokens SET rotated_at = NEW.created_at
        WHERE NEW.parent IS NOT NULL AND hash = NEW.parent AND rotated_at IS NULL;
    UPDATE sessions SET last_used_at = NEW.created_at, expires_at = MAX(expires_at, NEW.expires_at)
        WHERE id = NEW.session_id;
END;
