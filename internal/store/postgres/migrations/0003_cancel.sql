-- A cancel asked of a running run through a scheduler that does not own
-- it: the owner sees the request and stops the run.
ALTER TABLE runs ADD COLUMN cancel_by text;
CREATE INDEX runs_cancel ON runs (owner) WHERE cancel_by IS NOT NULL;
