-- The store notifies talon_events itself, after its commits and on a
-- connection of its own (see listen.go): a NOTIFY inside the writing
-- transaction made every transaction that wrote events commit one after
-- the other, holding the server's notification lock until its commit
-- was durable.
DROP TRIGGER events_notify ON events;
DROP FUNCTION events_notify();
