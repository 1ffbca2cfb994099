-- The indexes that began with the job spread the rows a step writes over
-- as many pages as it has jobs: with a long history each is a different
-- page, far apart, and SQLite writes every page a commit changed to the
-- write-ahead log, so a step cost more the more runs the jobs had before
-- (BenchmarkHistory100k: 0.67–0.77 of an empty store's rate). Beginning with
-- the period, a step's rows, which share a few periods, land together.
--
-- Runs: (period, job, id) serves what (job, period) and (period) served,
-- and lists a job's newest runs of each period from the index alone. The
-- index that keeps fires from running twice
-- (docs/guarantees.md#no-duplicate-runs) keeps its columns, so the same
-- runs are unique.
CREATE INDEX runs_period_job ON runs (period, job, id);
DROP INDEX runs_job_period;
DROP INDEX runs_period;
DROP INDEX runs_fire;
CREATE UNIQUE INDEX runs_fire ON runs (period, job, trigger_name, fire_time)
	WHERE idem_key IS NULL AND fire_time IS NOT NULL;

-- Run counters: keyed by (period, job, state). A job's periods are found
-- through run_counts_job, which changes only when a (job, period, state)
-- gets its first run, not at every count.
CREATE TABLE run_counts_by_period (
	job    TEXT    NOT NULL,
	period TEXT    NOT NULL,
	state  TEXT    NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (period, job, state)
) WITHOUT ROWID;
INSERT INTO run_counts_by_period (job, period, state, n) SELECT job, period, state, n FROM run_counts;
DROP TABLE run_counts;
ALTER TABLE run_counts_by_period RENAME TO run_counts;
CREATE INDEX run_counts_job ON run_counts (job, period);
