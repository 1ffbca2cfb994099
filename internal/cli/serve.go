package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/config"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"

	// The state stores register themselves by URL scheme.
	_ "github.com/talonhq/talon/internal/store/postgres"
	_ "github.com/talonhq/talon/internal/store/sqlite"
)

type serveOpts struct {
	config, schedule, state, listen, logs string
}

// newServeCmd builds the serve verb: scheduler and HTTP API in one
// process. Flags override the config file; the config file overrides the
// defaults.
func newServeCmd(g *globals) *cobra.Command {
	var o serveOpts
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [--schedule PATH] [--state URL] [--listen ADDR]",
		Short: "Run the scheduler and the HTTP API",
		Long: `Run the scheduler and the HTTP API in one process.

The schedule is a YAML file or a directory of them; the state store is
sqlite:PATH (the default, ./talon.db) or postgres://…. SIGHUP (or
talon reload) re-reads the schedule; an invalid one keeps the old one
running and the error says why.`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config file (talon.yaml); may hold the schedule too")
	f.StringVar(&o.schedule, "schedule", "", "schedule file or directory")
	f.StringVar(&o.state, "state", "", "state store: sqlite:PATH (default sqlite:talon.db) or postgres://…")
	f.StringVar(&o.listen, "listen", "", "HTTP address, on a loopback host (default 127.0.0.1:7070)")
	f.StringVar(&o.logs, "logs", "", "directory for run logs (default talon-logs)")
	return cmd
}

func (g *globals) serve(ctx context.Context, o serveOpts) error {
	cfg := &config.Config{}
	if o.config != "" {
		c, err := config.Load(o.config)
		if err != nil {
			return g.printList(err, "server not started")
		}
		cfg = c
		// Paths in the config file are relative to the file.
		cfg.Schedule = cfg.Resolve(cfg.Schedule)
		cfg.Logs = cfg.Resolve(cfg.Logs)
		if p, ok := strings.CutPrefix(cfg.State, "sqlite:"); ok && p != "" {
			cfg.State = "sqlite:" + cfg.Resolve(p)
		}
	}
	if o.schedule != "" {
		cfg.Schedule = o.schedule
	}
	if o.state != "" {
		cfg.State = o.state
	}
	if o.listen != "" {
		if msg, instead := config.CheckListen(o.listen); msg != "" {
			return withHint(fmt.Errorf("--listen: %s", msg), "talon serve --listen %s", instead)
		}
		cfg.Listen = o.listen
	}
	if o.logs != "" {
		cfg.Logs = o.logs
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return g.printList(err, "server not started")
	}
	if cfg.Schedule == "" {
		return withHint(errors.New("no schedule: pass --schedule PATH or put jobs in the --config file"),
			quickStartHint)
	}

	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	exs := executors(logger)
	opt := schedule.Options{Executors: slices.Sorted(maps.Keys(exs))}
	load := func() (*schedule.Schedule, error) { return schedule.Load(opt, cfg.Schedule) }
	sched, err := load()
	if err != nil {
		return g.printList(err, "server not started")
	}

	unlock, err := lockState(cfg.State)
	if err != nil {
		return withHint(err, "talon serve --state postgres://talon@db.example/talon")
	}
	defer unlock()

	st, err := openStore(ctx, cfg.State, logger)
	if err != nil {
		return withHint(fmt.Errorf("open state store %s: %w", redact(cfg.State), err),
			"talon serve --state sqlite:talon.db")
	}
	defer st.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return withHint(fmt.Errorf("listen on %s: %w", cfg.Listen, err), "talon serve --listen 127.0.0.1:7071")
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		// "localhost" that resolves to another address: the API has no
		// TLS nor tokens, so it must not be reachable from other hosts.
		ln.Close()
		return withHint(fmt.Errorf("listen on %s: bound %s, which is not a loopback address", cfg.Listen, ln.Addr()), "talon serve --listen 127.0.0.1:7070")
	}
	baseURL := "http://" + ln.Addr().String()

	if err := os.MkdirAll(cfg.Logs, 0o700); err != nil {
		return fmt.Errorf("run log directory: %w", err)
	}
	logDir, _ := filepath.Abs(cfg.Logs)
	// One reader of the event feed for the process: the scheduler and
	// the API's event streams and log followers share it.
	hub := feed.New(st, logger, feed.Options{})
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(hubCtx)
	}()
	defer func() {
		stopHub()
		<-hubDone
	}()

	e, err := engine.New(engine.Config{
		Store: st, Schedule: sched, Load: load, Logger: logger, LogDir: logDir, URL: baseURL,
		Executors: exs, Lease: cfg.Lease, Feed: hub,
	})
	if err != nil {
		return err
	}

	srv := api.NewHTTPServer(api.NewServer(e, logger, api.WithFeed(hub)), api.HTTPLimits{})
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", "err", err)
		}
	}()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if summary, err := e.Reload(ctx); err != nil {
					logger.Error("schedule reload refused", "err", err)
				} else {
					logger.Info(summary)
				}
			}
		}
	}()

	logger.Info("talon serving", "url", baseURL, "schedule", cfg.Schedule, "jobs", len(sched.Jobs), "state", redact(cfg.State), "instance", e.InstanceID())
	// Write the address for scripts that started us on port 0.
	fmt.Fprintf(g.stdout, "talon: serving %s\n", baseURL)

	err = e.Loop(ctx)
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return err
}

// executors returns the registered executors (a program embedding Talon
// may register its own), plus local and inprocess unless it replaced them.
func executors(logger *slog.Logger) map[string]executor.Executor {
	out := map[string]executor.Executor{
		"local":     local.New(logger),
		"inprocess": inprocess.New(),
	}
	for _, name := range executor.Names() {
		if ex, err := executor.Get(name); err == nil {
			out[name] = ex
		}
	}
	return out
}

// offlineOptions are what offline verbs (validate, calendar) check a
// schedule against: the executors serve would have, without building
// them.
func offlineOptions() schedule.Options {
	names := append([]string{"inprocess", "local"}, executor.Names()...)
	slices.Sort(names)
	return schedule.Options{Executors: slices.Compact(names)}
}

// openStore opens the state store, waiting for a database that is not up
// yet (a machine booting, PostgreSQL restarting) rather than giving up:
// scheduling starts by itself once it answers. Other errors (a bad URL,
// a file that cannot be created) end the command at once.
func openStore(ctx context.Context, url string, logger *slog.Logger) (store.Store, error) {
	wait := 500 * time.Millisecond
	for {
		st, err := store.Open(ctx, url)
		if err == nil || !errors.Is(err, store.ErrUnavailable) {
			return st, err
		}
		logger.Warn("state store unavailable; retrying", "state", redact(url), "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// printList prints every error of a schedule.ErrorList on its own line
// and returns a summary error; other errors are returned as they are.
func (g *globals) printList(err error, what string) error {
	var list schedule.ErrorList
	if !errors.As(err, &list) {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, e := range list {
		fmt.Fprintln(g.stderr, e.Error())
	}
	return fmt.Errorf("%s: %w", what, errorCount(list))
}

// redact hides a password in a store URL, so it never reaches a log.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
