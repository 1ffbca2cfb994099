-- The event feed carries what a stream consumer filters and shows: the
-- type of the event, the run's job and period, and for progress and
-- artifact events their payload. Older rows were all transitions, or
-- re-decisions of blocked runs (from = to).
ALTER TABLE events ADD COLUMN type   text NOT NULL DEFAULT 'transition';
ALTER TABLE events ADD COLUMN job    text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN period text NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN detail jsonb;
UPDATE events SET type = 'decision' WHERE from_state = to_state;
UPDATE events AS e SET job = r.job, period = r.period FROM runs AS r WHERE r.id = e.run_id;

-- What a run's last decisions answered (store.AnswerKey), so a re-check
-- that answers the same writes no event even when its words count down.
ALTER TABLE runs ADD COLUMN answer text NOT NULL DEFAULT '';

-- Every statement that inserts events tells the listeners of this schema
-- (payload: the schema's name) at commit, so every scheduler's event
-- stream wakes at once, whichever scheduler wrote. NOTIFY is
-- transactional: a rolled-back insert tells no one.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM inserted) THEN
		PERFORM pg_notify('talon_events', TG_TABLE_SCHEMA);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
	REFERENCING NEW TABLE AS inserted
	FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
