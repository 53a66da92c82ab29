-- The token a refresh token replaced. SQLite's migration 5 also makes rotation a single
-- statement with a trigger; here rotation stays a transaction whose conditional UPDATE
-- takes the row lock, which is what makes two racing rotations of one token lose
-- correctly under READ COMMITTED.
ALTER TABLE refresh_tokens ADD COLUMN parent BYTEA;
