-- Times are INTEGER microseconds since the Unix epoch, UTC: they sort and
-- compare as numbers, and keep the store's microsecond precision exactly.
CREATE TABLE runs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	job          TEXT    NOT NULL,
	period       TEXT    NOT NULL,
	environment  TEXT    NOT NULL DEFAULT '',
	state        TEXT    NOT NULL,
	attempt      INTEGER NOT NULL DEFAULT 1,
	executor     TEXT    NOT NULL DEFAULT '',
	trigger_name TEXT    NOT NULL DEFAULT '',
	fire_time    INTEGER,          -- NULL for external triggers
	idem_key     TEXT,             -- NULL when the client gave no key
	params       TEXT,             -- JSON object, NULL when empty
	retry_of     INTEGER,
	created      INTEGER NOT NULL,
	started      INTEGER,
	finished     INTEGER,
	reason       TEXT    NOT NULL DEFAULT '',
	recheck_at   INTEGER,
	owner        TEXT    NOT NULL DEFAULT '',
	handle       TEXT    NOT NULL DEFAULT '',
	progress     TEXT              -- JSON, NULL until reported
);

-- No duplicate runs (docs/guarantees.md#no-duplicate-runs). Only fires with a time take part:
-- an external trigger without a key creates a new run each time.
CREATE UNIQUE INDEX runs_fire ON runs (job, period, trigger_name, fire_time)
	WHERE idem_key IS NULL AND fire_time IS NOT NULL;
CREATE UNIQUE INDEX runs_key ON runs (job, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX runs_job_period ON runs (job, period);
CREATE INDEX runs_state ON runs (state);
CREATE INDEX runs_job_state ON runs (job, state);
CREATE INDEX runs_period ON runs (period);

CREATE TABLE events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	time       INTEGER NOT NULL,
	from_state TEXT    NOT NULL DEFAULT '',
	to_state   TEXT    NOT NULL,
	reason     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE decisions (
	run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	pos             INTEGER NOT NULL,
	constraint_name TEXT    NOT NULL,
	action          TEXT    NOT NULL,
	reason          TEXT    NOT NULL DEFAULT '',
	recheck_at      INTEGER,
	PRIMARY KEY (run_id, pos)
);

CREATE TABLE artifacts (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	job     TEXT    NOT NULL,
	period  TEXT    NOT NULL,
	url     TEXT    NOT NULL,
	created INTEGER NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, id);
CREATE INDEX artifacts_period ON artifacts (period, job);

CREATE TABLE cursors (
	job          TEXT    NOT NULL,
	trigger_name TEXT    NOT NULL,
	fired        INTEGER NOT NULL,
	PRIMARY KEY (job, trigger_name)
);

CREATE TABLE instances (
	id        TEXT    PRIMARY KEY,
	host      TEXT    NOT NULL DEFAULT '',
	pid       INTEGER NOT NULL DEFAULT 0,
	started   INTEGER NOT NULL,
	heartbeat INTEGER NOT NULL
);
