-- Remote agents (talon agent): each agent's current session, its lease in
-- the database's clock (here: the host's, which every process on an
-- SQLite file shares), and the runs handed to agents.
CREATE TABLE agents (
	name       TEXT PRIMARY KEY,
	session    TEXT    NOT NULL,
	slots      INTEGER NOT NULL,
	labels     TEXT    NOT NULL DEFAULT '{}',
	host       TEXT    NOT NULL DEFAULT '',
	version    TEXT    NOT NULL DEFAULT '',
	registered_by TEXT NOT NULL DEFAULT '',
	registered INTEGER NOT NULL,
	heartbeat  INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);

-- A run handed to an agent: offered → taken → started → ended. spec (the
-- run's command, environment and secrets) is dropped once it started or
-- ended.
CREATE TABLE agent_runs (
	run_id    INTEGER PRIMARY KEY,
	agent     TEXT    NOT NULL,
	job       TEXT    NOT NULL DEFAULT '',
	session   TEXT    NOT NULL,
	state     TEXT    NOT NULL,
	spec      BLOB,
	pid       INTEGER NOT NULL DEFAULT 0,
	offered   INTEGER NOT NULL,
	started   INTEGER,
	ended     INTEGER,
	succeeded INTEGER NOT NULL DEFAULT 0,
	exit_code INTEGER NOT NULL DEFAULT 0,
	reason    TEXT    NOT NULL DEFAULT '',
	cancel    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX agent_runs_open ON agent_runs (agent, session) WHERE state <> 'ended';
CREATE INDEX agent_runs_ended ON agent_runs (ended) WHERE state = 'ended';
