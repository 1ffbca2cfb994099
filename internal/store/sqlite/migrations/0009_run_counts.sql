-- How many runs of a job in a period are in each state, kept in the
-- transaction of every run's creation and transition (store.CountChanges),
-- so the constraints that count runs (after, once_per_period) cost the
-- same with a million runs in the history as with none. Rows whose count
-- fell to 0 stay; readers skip them.
CREATE TABLE run_counts (
	job    TEXT    NOT NULL,
	period TEXT    NOT NULL,
	state  TEXT    NOT NULL,
	n      INTEGER NOT NULL,
	PRIMARY KEY (job, period, state)
) WITHOUT ROWID;
INSERT INTO run_counts (job, period, state, n)
	SELECT job, period, state, count(*) FROM runs GROUP BY job, period, state;

-- Only live runs are looked up by state (see the PostgreSQL migration):
-- a partial index holds them alone.
DROP INDEX runs_state;
DROP INDEX runs_job_state;
CREATE INDEX runs_live ON runs (state, job) WHERE state IN ('blocked', 'ready', 'running');

-- A run's answer (store.AnswerKey) is set by every decision that gave
-- answers, so a run without one has no decisions to replace; runs decided
-- before answers were kept (migration 0005) get a placeholder.
UPDATE runs SET answer = '-' WHERE answer = '' AND id IN (SELECT run_id FROM decisions);
