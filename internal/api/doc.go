// Package api is Talon's HTTP API under /api/v1/ and the Go client that
// speaks it. The server serves a Backend (the engine implements it); the
// client mirrors the Backend's methods so the CLI, agents and jobs use
// one vocabulary, and errors cross the wire as *talon.Error with their
// code intact.
//
// Every route is registered with the auth.Permission it needs (the route
// table in server.go), and every request passes through one Authorizer
// before its handler.
package api
