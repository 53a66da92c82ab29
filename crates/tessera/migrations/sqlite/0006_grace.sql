-- A rotated refresh token may be presented once more within TESSERA_REFRESH_REUSE_GRACE (two
-- tabs racing); `grace_used` records that its one second chance is spent, so a third
-- presentation is reuse however soon it comes.
ALTER TABLE refresh_tokens ADD COLUMN grace_used INTEGER NOT NULL DEFAULT 0;
