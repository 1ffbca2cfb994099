-- The event feed carries what a stream consumer filters and shows: the
-- type of the event, the run's job and period, and for progress and
-- artifact events their payload (JSON). Older rows were all transitions,
-- or re-decisions of blocked runs (from = to).
ALTER TABLE events ADD COLUMN type   TEXT NOT NULL DEFAULT 'transition';
ALTER TABLE events ADD COLUMN job    TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN period TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN detail TEXT;
UPDATE events SET type = 'decision' WHERE from_state = to_state;
UPDATE events SET
	job    = (SELECT job FROM runs WHERE runs.id = events.run_id),
	period = (SELECT period FROM runs WHERE runs.id = events.run_id);

-- What a run's last decisions answered (store.AnswerKey), so a re-check
-- that answers the same writes no event even when its words count down.
ALTER TABLE runs ADD COLUMN answer TEXT NOT NULL DEFAULT '';
