-- The admin console: people found by the start of their username (the email has its unique
-- index already), and the audit trail filtered by actor, subject or kind, newest first.

CREATE INDEX audit_events_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_kind ON audit_events (kind, seq);
