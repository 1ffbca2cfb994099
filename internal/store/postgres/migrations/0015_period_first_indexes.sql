-- The indexes of runs that began with the job spread the runs a step
-- creates over as many index pages as it has jobs: with a long history,
-- each page a different one, far apart, so a step cost more the more
-- runs the jobs had before (BenchmarkHistory100k: 0.73 of an empty
-- store's rate). Beginning with the period, a step's new runs, which
-- share a few periods, land together, whatever the history; (period,
-- job) serves what (job, period) and (period) served, and with id it
-- also lists a job's newest runs of each period from the index alone.
-- A job's periods come from run_counts (ListPeriods, ListRuns by job).
CREATE INDEX runs_period_job ON runs (period, job, id);
DROP INDEX runs_job_period;
DROP INDEX runs_period;
-- The same for the index that keeps fires from running twice
-- (docs/guarantees.md#no-duplicate-runs): the same columns, so the same
-- runs are unique.
CREATE UNIQUE INDEX runs_fire_period ON runs (period, job, trigger_name, fire_time)
	WHERE idem_key IS NULL AND fire_time IS NOT NULL;
DROP INDEX runs_fire;
ALTER INDEX runs_fire_period RENAME TO runs_fire;
