-- Paused jobs: while a job has a row here its runs do not enter ready,
-- and its triggers record their fires as skipped.
CREATE TABLE paused_jobs (
	job       text        PRIMARY KEY,
	paused_by text        NOT NULL,
	reason    text        NOT NULL DEFAULT '',
	since     timestamptz NOT NULL
);

-- The audit: who did what to which object, when, from where, and how it
-- ended.
CREATE TABLE audit (
	id      bigserial   PRIMARY KEY,
	time    timestamptz NOT NULL,
	actor   text        NOT NULL,
	action  text        NOT NULL,
	object  text        NOT NULL DEFAULT '',
	remote  text        NOT NULL DEFAULT '',
	outcome text        NOT NULL,
	detail  text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_actor ON audit (actor, id);
