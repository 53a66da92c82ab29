-- The root of the keys every instance must share (the pages' CSRF key, `login_after` markers,
-- sealed authorization codes) when no master key is set: 32 random bytes, made by the first
-- instance that starts. With a master key these keys derive from it instead and this row is
-- not used. Like private keys without a master key, it is stored as is: anyone who can read
-- the database can forge forms and codes, which is why `prod` requires a master key.
CREATE TABLE shared_secret (
    id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    secret     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
