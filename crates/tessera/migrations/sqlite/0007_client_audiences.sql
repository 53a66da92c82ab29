-- Per-client audiences (RFC 8707 resource indicators): a JSON array of the resources the
-- client's tokens may name in `aud`, the default first. An empty array means the configured
-- audience, which is what every client had before.
ALTER TABLE clients ADD COLUMN audiences TEXT NOT NULL DEFAULT '[]';
