// Package auth is who may call Talon's API, and what they may do there.
//
// A caller presents a bearer token. Sources (tokens listed in the
// config, a token file, signed JWTs, the run-scoped tokens the engine
// gives each run) each say whether they know the token and, if so, who
// it names: a Principal with a Role. Sources are registered by name like
// stores and executors, so a program embedding Talon can add its own.
//
// What a role may do is one table (Allows): each API route names the
// Permission it needs, and a test checks that every route has one.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Role is what a principal is allowed to do, as a whole.
type Role string

// The roles. Viewer reads everything but secrets; operator also triggers,
// cancels, retries, backfills, marks, pauses and resumes; admin also
// reloads and reads the audit; agent is a remote node running `talon
// agent`; run is the token a run gets for itself (TALON_TOKEN), which may
// only read that run and report its progress and artifacts.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
	RoleAgent    Role = "agent"
	RoleRun      Role = "run"
)

// Roles are the roles a config may grant (RoleRun is only ever minted by
// the engine for a run).
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin, RoleAgent}

// Valid reports whether r is a role a config may grant.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Permission is what a route needs.
type Permission string

// The permissions routes need.
const (
	// PermPublic: anyone, even without a token (health checks).
	PermPublic Permission = "public"
	// PermRead: read jobs, runs, periods, resources, logs, events.
	PermRead Permission = "read"
	// PermReadRun: read one run (the {id} of the route); a run token may
	// read its own run.
	PermReadRun Permission = "read_run"
	// PermReport: report progress and artifacts of one run (the {id} of
	// the route); a run token may report for its own run.
	PermReport Permission = "report"
	// PermOperate: trigger, cancel, retry, backfill, mark, pause, resume.
	PermOperate Permission = "operate"
	// PermAgent: what a remote agent needs (register, heartbeat, take and
	// report runs).
	PermAgent Permission = "agent"
	// PermAdmin: reload, audit, everything else.
	PermAdmin Permission = "admin"
)

// Principal is who a token names.
type Principal struct {
	// Name is who it is: a user from the config ("alice"), a JWT's
	// subject, "run 42" for a run token. Recorded as who cancelled,
	// retried, paused, in the audit.
	Name string
	Role Role
	// Run is the run a run token belongs to (RoleRun only).
	Run int64
	// Source is the name of the source that knew the token.
	Source string
}

// Allows reports whether p may use a route that needs perm; run is the
// run the route is about ({id} in its path), 0 when it is about none.
// This is the one table of who may do what.
func (p Principal) Allows(perm Permission, run int64) bool {
	if perm == PermPublic {
		return true
	}
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleOperator:
		return perm == PermRead || perm == PermReadRun || perm == PermReport || perm == PermOperate
	case RoleViewer:
		return perm == PermRead || perm == PermReadRun
	case RoleAgent:
		return perm == PermAgent
	case RoleRun:
		return (perm == PermReadRun || perm == PermReport) && run != 0 && run == p.Run
	}
	return false
}

// ErrUnknownToken is what a Source answers for a token it does not know:
// the next source is asked. Any other error rejects the token outright
// (an expired JWT, a run token of a finished run).
var ErrUnknownToken = errors.New("token not known")

// Source says who a bearer token names.
type Source interface {
	// Authenticate returns the principal token names, ErrUnknownToken
	// when this source does not know it, or another error (wrapping
	// ErrRejected) saying why it refuses it.
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// ErrRejected wraps the reason a source refuses a token it knows.
var ErrRejected = errors.New("token rejected")

// Reloader is a Source that re-reads its data (a token file, a JWKS) on
// reload (SIGHUP or POST /api/v1/reload).
type Reloader interface {
	Reload(ctx context.Context) error
}

// Factory builds a source from its settings in the config: decode reads
// them (the YAML mapping under the source's name in auth:) into a struct,
// rejecting unknown keys; dir is the config file's directory, which
// relative paths are relative to.
type Factory func(decode func(v any) error, dir string) (Source, error)

var (
	regMu    sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a source available under name in the config's auth:
// mapping. It panics if name is empty or already registered, as
// database/sql's Register does: that is a bug in the program.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if name == "" || f == nil {
		panic("auth: Register with an empty name or nil factory")
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("auth: source %q registered twice", name))
	}
	registry[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// Names lists the registered sources, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
