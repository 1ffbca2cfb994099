CREATE TABLE runs (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job          text        NOT NULL,
	period       text        NOT NULL,
	environment  text        NOT NULL DEFAULT '',
	state        text        NOT NULL,
	attempt      integer     NOT NULL DEFAULT 1,
	executor     text        NOT NULL DEFAULT '',
	trigger_name text        NOT NULL DEFAULT '',
	fire_time    timestamptz,          -- NULL for external triggers
	idem_key     text,                 -- NULL when the client gave no key
	params       jsonb,                -- NULL when empty
	retry_of     bigint,
	created      timestamptz NOT NULL,
	started      timestamptz,
	finished     timestamptz,
	reason       text        NOT NULL DEFAULT '',
	recheck_at   timestamptz,
	owner        text        NOT NULL DEFAULT '',
	handle       text        NOT NULL DEFAULT '',
	progress     jsonb                 -- NULL until reported
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
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id     bigint      NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	time       timestamptz NOT NULL,
	from_state text        NOT NULL DEFAULT '',
	to_state   text        NOT NULL,
	reason     text        NOT NULL DEFAULT ''
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE decisions (
	run_id          bigint  NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	pos             integer NOT NULL,
	constraint_name text    NOT NULL,
	action          text    NOT NULL,
	reason          text    NOT NULL DEFAULT '',
	recheck_at      timestamptz,
	PRIMARY KEY (run_id, pos)
);

CREATE TABLE artifacts (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id  bigint      NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	job     text        NOT NULL,
	period  text        NOT NULL,
	url     text        NOT NULL,
	created timestamptz NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, id);
CREATE INDEX artifacts_period ON artifacts (period, job);

CREATE TABLE cursors (
	job          text        NOT NULL,
	trigger_name text        NOT NULL,
	fired        timestamptz NOT NULL,
	PRIMARY KEY (job, trigger_name)
);

CREATE TABLE instances (
	id        text        PRIMARY KEY,
	host      text        NOT NULL DEFAULT '',
	pid       integer     NOT NULL DEFAULT 0,
	started   timestamptz NOT NULL,
	heartbeat timestamptz NOT NULL
);
