-- How many runs of a job in a period are in each state, kept in the
-- transaction of every run's creation and transition (store.CountChanges),
-- so the constraints that count runs (after, once_per_period) cost the
-- same with a million runs in the history as with none. Rows whose count
-- fell to 0 stay; readers skip them.
CREATE TABLE run_counts (
	job    text   NOT NULL,
	period text   NOT NULL,
	state  text   NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (job, period, state)
);
INSERT INTO run_counts (job, period, state, n)
	SELECT job, period, state, count(*) FROM runs GROUP BY job, period, state;

-- The state of finished runs is looked up through the counters or by
-- (job, period); only live runs (the scheduler's queue, max_running, the
-- runs a dead scheduler left) are looked up by state. A partial index
-- holds them alone, so a run's last transition leaves one index entry
-- fewer to write, and the index stays as small as the queue.
DROP INDEX runs_state;
DROP INDEX runs_job_state;
CREATE INDEX runs_live ON runs (state, job) WHERE state IN ('blocked', 'ready', 'running');

-- A run's events and decisions are written in the transaction that
-- creates or moves the run, under its row lock, and runs are never
-- deleted: the foreign keys only cost a lookup per row written.
ALTER TABLE events DROP CONSTRAINT events_run_id_fkey;
ALTER TABLE decisions DROP CONSTRAINT decisions_run_id_fkey;

-- A run's answer (store.AnswerKey) is set by every decision that gave
-- answers, so a run without one has no decisions to replace; runs decided
-- before answers were kept (migration 0005) get a placeholder.
UPDATE runs SET answer = '-' WHERE answer = '' AND id IN (SELECT run_id FROM decisions);
