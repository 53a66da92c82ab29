-- The audit trail: who did what to whom, from where. Pruned after TESSERA_AUDIT_RETENTION.

CREATE TABLE audit_events (
    seq     BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    actor   TEXT,
    subject TEXT,
    ip      TEXT,
    detail  TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
