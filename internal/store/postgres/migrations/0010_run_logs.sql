-- A run's output, in chunks at their byte offsets (store.AppendLog): the
-- log every scheduler sharing the store shows, whoever ran the run. A
-- chunk is a batch of output (up to 256 KiB); a log only grows at its
-- end, so the last chunk (the highest off) gives its size.
CREATE TABLE run_logs (
	run_id bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	off    bigint NOT NULL,
	data   bytea  NOT NULL,
	PRIMARY KEY (run_id, off)
);
