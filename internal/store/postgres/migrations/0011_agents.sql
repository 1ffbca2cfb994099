-- Remote agents (talon agent): each agent's current session, its lease in
-- the database's clock, and the runs handed to agents.
CREATE TABLE agents (
	name       text PRIMARY KEY,
	session    text    NOT NULL,
	slots      integer NOT NULL,
	labels     jsonb   NOT NULL DEFAULT '{}',
	host       text    NOT NULL DEFAULT '',
	version    text    NOT NULL DEFAULT '',
	registered_by text NOT NULL DEFAULT '',
	registered timestamptz NOT NULL,
	heartbeat  timestamptz NOT NULL,
	expires    timestamptz NOT NULL
);

-- A run handed to an agent: offered → taken → started → ended. spec (the
-- run's command, environment and secrets) is dropped once it started or
-- ended.
CREATE TABLE agent_runs (
	run_id    bigint PRIMARY KEY,
	agent     text    NOT NULL,
	job       text    NOT NULL DEFAULT '',
	session   text    NOT NULL,
	state     text    NOT NULL,
	spec      bytea,
	pid       integer NOT NULL DEFAULT 0,
	offered   timestamptz NOT NULL,
	started   timestamptz,
	ended     timestamptz,
	succeeded boolean NOT NULL DEFAULT false,
	exit_code integer NOT NULL DEFAULT 0,
	reason    text    NOT NULL DEFAULT '',
	cancel    text    NOT NULL DEFAULT ''
);
CREATE INDEX agent_runs_open ON agent_runs (agent, session) WHERE state <> 'ended';
CREATE INDEX agent_runs_ended ON agent_runs (ended) WHERE state = 'ended';
