-- The admin console: people found by the start of their email or username, compared in byte
-- order (COLLATE "C") so that a prefix is one index range whatever the database's collation,
-- and the audit trail filtered by actor, subject or kind, newest first.

CREATE INDEX users_email_normalized_c ON users (email_normalized COLLATE "C");
CREATE INDEX users_username_c ON users (username COLLATE "C");
CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_kind ON audit_events (kind, seq);
