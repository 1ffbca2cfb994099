-- Paused jobs: while a job has a row here its runs do not enter ready,
-- and its triggers record their fires as skipped.
CREATE TABLE paused_jobs (
	job       TEXT    PRIMARY KEY,
	paused_by TEXT    NOT NULL,
	reason    TEXT    NOT NULL DEFAULT '',
	since     INTEGER NOT NULL
);

-- The audit: who did what to which object, when, from where, and how it
-- ended.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	object  TEXT    NOT NULL DEFAULT '',
	remote  TEXT    NOT NULL DEFAULT '',
	outcome TEXT    NOT NULL,
	detail  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_actor ON audit (actor, id);
