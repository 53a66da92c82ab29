-- The audit trail: who did what to whom, from where. Pruned after TESSERA_AUDIT_RETENTION.

CREATE TABLE audit_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT,
    subject TEXT,
    ip      TEXT,
    detail  TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
