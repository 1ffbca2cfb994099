-- Resource holds. A row lives while its run holds the units; rows of
-- consumable nodes (period <> '') are never released: they count until
-- their period ends, and stay as the record of what each period used.
CREATE TABLE allocations (
	run_id  bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	path    text    NOT NULL,
	units   integer NOT NULL,
	period  text    NOT NULL DEFAULT '',
	created timestamptz NOT NULL
);
CREATE INDEX allocations_run ON allocations (run_id);
CREATE INDEX allocations_period ON allocations (period, path);

-- Runs that passed their constraints and wait for resources: the queue
-- whose head reserves units (fairness). requests is JSON.
CREATE TABLE waiters (
	run_id   bigint PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
	priority integer NOT NULL,
	requests jsonb   NOT NULL,
	since    timestamptz NOT NULL,
	reason   text    NOT NULL DEFAULT ''
);
CREATE INDEX waiters_queue ON waiters (priority DESC, run_id);
