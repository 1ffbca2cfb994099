-- Artifacts may be named (a job's declared artifact, or --name), and are
-- listed by job (talon artifacts --job); by period, artifacts_period
-- serves already.
ALTER TABLE artifacts ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX artifacts_job ON artifacts (job, id);

-- Random values made once per database and shared by every scheduler on
-- it, such as the key run tokens are signed with. Never shown.
CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
