-- A run counter had one row per (job, period, state), so transactions
-- on different connections moving runs of the same job and period (the
-- API creating runs while the scheduler starts others, or several
-- clients triggering one job) each waited for the previous one's commit
-- on that row. Each connection now adds to a shard of its own
-- (pg_backend_pid() % 8), and readers sum the shards: a shard may hold a
-- negative number, the sum never does.
ALTER TABLE run_counts ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE run_counts DROP CONSTRAINT run_counts_pkey;
ALTER TABLE run_counts ADD PRIMARY KEY (job, period, state, shard);
