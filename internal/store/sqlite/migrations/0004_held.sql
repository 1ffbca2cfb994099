-- What each run held, kept after the holds are released (allocations
-- keeps only live holds), so a finished run still shows what it ran with.
CREATE TABLE held (
	run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	path    TEXT    NOT NULL,
	units   INTEGER NOT NULL,
	period  TEXT    NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);
CREATE INDEX held_run ON held (run_id);
INSERT INTO held (run_id, path, units, period, created)
	SELECT run_id, path, units, period, created FROM allocations;
