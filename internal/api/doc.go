// Package api is Talon's HTTP API under /api/v1/ and the Go client that
// speaks it. The server serves a Backend: its reads come from a Reader
// (the query service, internal/query) and its commands go to a Commander
// (the engine). What crosses the wire is the root vocabulary and the view
// types of internal/view, never a store type. The client mirrors the
// Backend's methods so the CLI, agents and jobs use one vocabulary, and
// errors cross the wire as *talon.Error with their code intact.
//
// Every route is registered with the auth.Permission it needs (the route
// table in server.go), and every request passes through one Authorizer
// before its handler.
package api
