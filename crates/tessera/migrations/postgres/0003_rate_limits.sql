-- Counters shared by every instance: failed logins per account identifier, and credential
-- requests per client address per minute.

CREATE TABLE login_failures (
    login        TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);

CREATE TABLE rate_counters (
    client TEXT NOT NULL,
    minute BIGINT NOT NULL,
    hits   BIGINT NOT NULL,
    PRIMARY KEY (client, minute)
);
