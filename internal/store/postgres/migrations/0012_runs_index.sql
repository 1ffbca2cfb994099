-- runs_fire (job, period, trigger_name, fire_time) begins with (job,
-- period): it answers every lookup runs_job_period did, so that index
-- only cost an entry to write on every insert and on every transition
-- that moves a row to a new version.
DROP INDEX runs_job_period;
