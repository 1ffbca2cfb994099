-- Resource holds. A row lives while its run holds the units; rows of
-- consumable nodes (period <> '') are never released: they count until
-- their period ends, and stay as the record of what each period used.
CREATE TABLE allocations (
	run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	path    TEXT    NOT NULL,
	units   INTEGER NOT NULL,
	period  TEXT    NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);
CREATE INDEX allocations_run ON allocations (run_id);
CREATE INDEX allocations_period ON allocations (period, path);

-- Runs that passed their constraints and wait for resources: the queue
-- whose head reserves units (fairness). requests is JSON.
CREATE TABLE waiters (
	run_id   INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	priority INTEGER NOT NULL,
	requests TEXT    NOT NULL,
	since    INTEGER NOT NULL,
	reason   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX waiters_queue ON waiters (priority DESC, run_id);
