// Package api is Talon's HTTP API under /api/v1/ and the Go client that
// speaks it. The server serves a Backend (the engine implements it); the
// client mirrors the Backend's methods so the CLI, agents and jobs use
// one vocabulary, and errors cross the wire as *talon.Error with their
// code intact.
//
// Every route is registered with an Access level (public, read, operate,
// run, admin), and every request passes through one Authorizer before its
// handler. Today's default allows everything, which is right for a server
// listening on loopback; token authentication plugs in there without
// touching a handler.
package api
