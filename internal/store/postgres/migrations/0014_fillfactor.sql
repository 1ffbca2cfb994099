-- A run counter's row is rewritten by nearly every transaction (the runs
-- it creates and moves), and a decision's by every new decision of its
-- run; their keys never change. With room left on each page, PostgreSQL
-- writes the new version beside the old one without touching the
-- indexes (a HOT update) and prunes the old one in passing, so the
-- tables and their indexes do not bloat between vacuums. Pages written
-- from now on keep the room; VACUUM FULL rewrites the old ones.
ALTER TABLE run_counts SET (fillfactor = 50);
ALTER TABLE decisions SET (fillfactor = 70);
