// Package server builds one Talon scheduler with its API from explicit
// values: over an open state store, the run tokens, the process's event
// feed, the engine, the auth chain, and the API with the dashboard.
// `talon serve` (internal/cli) and the public package for programs that
// embed Talon (scheduler) both build theirs here, so an embedded
// scheduler behaves as talon serve does. What differs stays with each
// caller: talon serve reads a config file, listens, speaks TLS and
// reloads on SIGHUP; a program mounts the API on its own mux.
//
// Opening the store is here too (OpenStore, LockState): it waits for a
// database that is not up yet, and keeps a second scheduler off an
// SQLite file that one already uses.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/auth/runtoken"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	agentexec "github.com/talonhq/talon/internal/executor/agent"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/web"
)

// Options are what a Server is built from. Schedule and Executors are
// required.
type Options struct {
	// Schedule is the schedule in force at start; Load re-reads it on a
	// reload (nil: reloading the schedule is refused).
	Schedule *schedule.Schedule
	Load     func() (*schedule.Schedule, error)
	// Executors by name, as jobs name them.
	Executors map[string]executor.Executor
	Logger    *slog.Logger
	// LogDir receives run logs; it is created if missing. Default
	// "talon-logs".
	LogDir string
	// URL is where runs reach the API (TALON_URL); CAFile the CA file
	// they verify it with (TALON_CA), if any.
	URL, CAFile string
	// Lease is the engine's heartbeat lease; zero: its default.
	Lease time.Duration
	// Auth are the sources that authenticate API callers, asked after
	// the run tokens, in this order.
	Auth []auth.Source
	// Anonymous lets callers without a token do everything, as admin.
	// Only for an API no other host can reach, and only without Auth.
	Anonymous bool
	// SecureCookies marks the dashboard's session cookies Secure: the
	// API is served over HTTPS.
	SecureCookies bool
	// Reload, when set, runs at every reload (SIGHUP, POST
	// /api/v1/reload) after the auth sources and before the schedule,
	// for what the caller reloads itself (talon serve: its TLS
	// certificate); it returns the problems found, each a sentence.
	Reload func(ctx context.Context) []string
}

// Server is a scheduler with its API. Build it with New, serve its API
// (Handler) as you like, run it with Run, and Close it.
type Server struct {
	// Engine is the scheduler's loop and its commands.
	Engine *engine.Engine
	// API is the HTTP API with the dashboard, which an HTTPServer
	// serves (api.NewHTTPServer) or a program mounts.
	API *api.Server

	rl      *reloading
	agents  *agentexec.Executor // nil when the caller gave its own
	hub     *feed.Hub
	stopHub context.CancelFunc
	hubDone chan struct{}
}

// New builds a server over st, which stays the caller's to close (after
// Close). It starts the process's reader of the store's event feed,
// which Close stops; the engine runs only in Run.
func New(ctx context.Context, st store.Store, o Options) (*Server, error) {
	if o.Schedule == nil {
		return nil, errors.New("server: no schedule")
	}
	if o.Anonymous && len(o.Auth) > 0 {
		return nil, errors.New("server: anonymous access with auth sources: callers without a token would bypass them")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.LogDir == "" {
		o.LogDir = "talon-logs"
	}
	if err := os.MkdirAll(o.LogDir, 0o700); err != nil {
		return nil, fmt.Errorf("run log directory: %w", err)
	}
	logDir, err := filepath.Abs(o.LogDir)
	if err != nil {
		return nil, fmt.Errorf("run log directory: %w", err)
	}
	// Each run gets a token (TALON_TOKEN) signed with a key kept in the
	// store, so every scheduler sharing it, and this one after a restart,
	// verifies the tokens of the runs it did not start.
	runTokens, err := runtoken.New(ctx, st)
	if err != nil {
		return nil, err
	}
	// The dashboard's CSRF tokens are signed with a key of the store, so
	// every scheduler sharing it accepts them.
	csrfKey, err := st.Secret(ctx, "dashboard-csrf")
	if err != nil {
		return nil, fmt.Errorf("dashboard key: %w", err)
	}

	// One reader of the event feed for the process: the scheduler and
	// the API's event streams and log followers share it.
	hub := feed.New(st, logger, feed.Options{})

	// Runs on remote agents (executor: agent), unless the caller gave its
	// own: the executor is also the server's side of the agents' protocol
	// (the API's agent routes). It reaches the engine, made next, for log
	// paths and resources.
	var e *engine.Engine
	exs := maps.Clone(o.Executors)
	var agents *agentexec.Executor
	if _, own := exs["agent"]; !own {
		if agents, err = agentexec.New(agentexec.Config{
			Store: st, Logger: logger,
			LogPath: func(r talon.Run) string { return e.LogPath(r) },
			Changed: func() { e.ResourcesChanged() },
		}); err != nil {
			return nil, err
		}
		exs["agent"] = agents
	}
	e, err = engine.New(engine.Config{
		Store: st, Schedule: o.Schedule, Load: o.Load, Logger: logger, LogDir: logDir, URL: o.URL,
		CAFile: o.CAFile, Executors: exs, Lease: o.Lease, RunToken: runTokens.Mint, Feed: hub,
	})
	if err != nil {
		if agents != nil {
			_ = agents.Close()
		}
		return nil, err
	}

	// The engine's run-scoped tokens (TALON_TOKEN of each run) are asked
	// before the other sources, so a run's token is known whatever they
	// are; a token of another form is not theirs and passes on.
	chain := auth.NewChain(append([]auth.Source{runTokens}, o.Auth...)...)
	// The API reads through the query service over the store, and acts
	// through the engine (wrapped to reload auth with the schedule).
	rl := &reloading{Commander: e, chain: chain, extra: o.Reload, logger: logger}
	reads := query.New(st, e, nil)
	// The dashboard is pages of the same server: the same authorizer
	// and permissions.
	sessions := api.NewSessions(csrfKey, o.SecureCookies)
	var login auth.Source
	if !o.Anonymous {
		login = chain
	}
	dash, err := web.New(web.Join(reads, rl), sessions, login, logger)
	if err != nil {
		return nil, err
	}
	opts := []api.Option{api.WithAuthorizer(api.BearerAuth(chain, o.Anonymous, logger)), api.WithFeed(hub),
		api.WithSessions(sessions), api.WithPages(dash), api.WithWriteTimeout(api.DefaultWriteTimeout)}
	if agents != nil {
		opts = append(opts, api.WithAgents(agents))
	}
	srv := api.NewServer(api.Join(reads, rl), logger, opts...)

	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{Engine: e, API: srv, rl: rl, hub: hub, stopHub: stopHub, hubDone: make(chan struct{}), agents: agents}
	go func() {
		defer close(s.hubDone)
		hub.Run(hubCtx)
	}()
	return s, nil
}

// Handler is the API with the dashboard: /api/v1/… and the dashboard's
// pages, each authorized as Options said.
func (s *Server) Handler() http.Handler { return s.API }

// Run runs the scheduler until ctx ends (engine.Loop): on return every
// process it started has been stopped and its run recorded.
func (s *Server) Run(ctx context.Context) error { return s.Engine.Loop(ctx) }

// Reload reloads the auth sources, what Options.Reload reloads, and the
// schedule, as POST /api/v1/reload does; problems are logged and
// returned, and whatever fails keeps what it had.
func (s *Server) Reload(ctx context.Context) (summary string, problems []string, scheduleErr error) {
	return s.rl.reloadAll(ctx)
}

// Close ends the API's streams and stops the event feed's reader. The
// store is the caller's to close afterwards.
func (s *Server) Close() {
	s.API.CloseStreams()
	if s.agents != nil {
		// Runs on agents go on: the next scheduler re-attaches to them.
		_ = s.agents.Close()
	}
	s.stopHub()
	<-s.hubDone
}

// reloading is the engine's commands with a Reload that also re-reads the
// auth sources (a token file, a JWKS) and what the caller reloads, for
// SIGHUP and POST /api/v1/reload alike. What fails to reload keeps what
// it had.
type reloading struct {
	api.Commander
	chain  *auth.Chain
	extra  func(ctx context.Context) []string
	logger *slog.Logger
}

// Reload reloads all; the error says what failed.
func (r *reloading) Reload(ctx context.Context) (string, error) {
	summary, problems, err := r.reloadAll(ctx)
	if len(problems) == 0 {
		return summary, err
	}
	if err != nil {
		return "", talon.Errorf(talon.EINVALID, "%v; %s", err, strings.Join(problems, "; "))
	}
	return "", talon.Errorf(talon.EINVALID, "schedule %s, but: %s", summary, strings.Join(problems, "; "))
}

// reloadAll reloads the auth sources and the caller's (logging and
// returning their problems) and then the schedule.
func (r *reloading) reloadAll(ctx context.Context) (summary string, problems []string, scheduleErr error) {
	if err := r.chain.Reload(ctx); err != nil {
		r.logger.Error("auth reload refused; each source keeps what it had", "err", err)
		problems = append(problems, err.Error())
	}
	if r.extra != nil {
		problems = append(problems, r.extra(ctx)...)
	}
	summary, scheduleErr = r.Commander.Reload(ctx)
	return summary, problems, scheduleErr
}

// OpenStore opens the state store, waiting for a database that is not up
// yet (a machine booting, PostgreSQL restarting) rather than giving up:
// scheduling starts by itself once it answers. Other errors (a bad URL,
// a file that cannot be created) return at once.
func OpenStore(ctx context.Context, url string, logger *slog.Logger) (store.Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wait := 500 * time.Millisecond
	for {
		st, err := store.Open(ctx, url)
		if err == nil || !errors.Is(err, store.ErrUnavailable) {
			return st, err
		}
		logger.Warn("state store unavailable; retrying", "state", Redact(url), "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// Redact hides a password in a store URL, so it never reaches a log.
func Redact(s string) string {
	u, err := neturl.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
