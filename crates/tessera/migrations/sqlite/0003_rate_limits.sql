-- Counters shared by every instance: failed logins per account identifier, and credential
-- requests per client address per minute.

CREATE TABLE login_failures (
    login        TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL
);

CREATE TABLE rate_counters (
    client TEXT NOT NULL,
    minute INTEGER NOT NULL,
    hits   INTEGER NOT NULL,
    PRIMARY KEY (client, minute)
);
