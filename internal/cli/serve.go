package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/config"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	sshexec "github.com/talonhq/talon/internal/executor/ssh"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/server"
	"github.com/talonhq/talon/internal/tlscert"

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
talon reload) re-reads the schedule, the token file and JWKS of auth:
and the certificate of tls:; whatever is invalid keeps the old one in
force and the error says why.

Without auth: on a loopback address, anyone on this host may use the
API (the log says "anonymous access: on"); with auth:, every request but
healthz needs a token (see docs/api.md).`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "config file (talon.yaml); may hold the schedule too")
	f.StringVar(&o.schedule, "schedule", "", "schedule file or directory")
	f.StringVar(&o.state, "state", "", "state store: sqlite:PATH (default sqlite:talon.db) or postgres://…")
	f.StringVar(&o.listen, "listen", "", "HTTP address (default 127.0.0.1:7070); one other hosts can reach needs tls: and auth: in the config, or insecure: true")
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
		if t := cfg.TLS; t != nil {
			t.Cert, t.Key, t.CA = cfg.Resolve(t.Cert), cfg.Resolve(t.Key), cfg.Resolve(t.CA)
		}
	}
	if o.schedule != "" {
		cfg.Schedule = o.schedule
	}
	if o.state != "" {
		cfg.State = o.state
	}
	if o.listen != "" {
		if msg, _ := cfg.CheckListen(o.listen); msg != "" {
			instead := config.DefaultListen
			if _, port, err := net.SplitHostPort(o.listen); err == nil {
				instead = net.JoinHostPort("127.0.0.1", port)
			}
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

	// Sources the config lists are built (their files read) before
	// anything starts, so a bad token file is an error at once.
	cfgSources, err := cfg.AuthSources()
	if err != nil {
		return g.printList(err, "server not started")
	}
	var cert *tlscert.Keypair
	if cfg.TLS != nil {
		if cert, err = tlscert.Open(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return withHint(fmt.Errorf("server not started: %w", err), "openssl x509 -in %s -noout -subject", cfg.TLS.Cert)
		}
	}

	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	exs := executors(logger, sshSettings(cfg, g.getenv))
	if c, ok := exs["ssh"].(io.Closer); ok {
		defer c.Close()
	}
	if ex, ok := exs["ssh"].(*sshexec.Executor); ok && cfg.SSH != nil {
		// The files the config names are read now: a wrong path is an
		// error at start, not at the first ssh run.
		if err := ex.Check(cfg.SSH.KnownHosts != ""); err != nil {
			return withHint(fmt.Errorf("server not started: executors: ssh: %w", err), "ssh-keygen -l -f %s", cmp.Or(cfg.SSH.KeyFile, cfg.SSH.KnownHosts))
		}
	}
	// The agent executor needs the store, opened below; its name is known
	// now, for the schedule.
	opt := schedule.Options{Executors: slices.Sorted(maps.Keys(exs))}
	if _, own := exs["agent"]; !own {
		opt.Executors = append(opt.Executors, "agent")
		slices.Sort(opt.Executors)
	}
	load := func() (*schedule.Schedule, error) { return schedule.Load(opt, cfg.Schedule) }
	sched, err := load()
	if err != nil {
		return g.printList(err, "server not started")
	}

	unlock, err := server.LockState(cfg.State)
	if err != nil {
		return withHint(err, "talon serve --state postgres://talon@db.example/talon")
	}
	defer unlock()

	st, err := server.OpenStore(ctx, cfg.State, logger)
	if err != nil {
		return withHint(fmt.Errorf("open state store %s: %w", server.Redact(cfg.State), err),
			"talon serve --state sqlite:talon.db")
	}
	defer st.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return withHint(fmt.Errorf("listen on %s: %w", cfg.Listen, err), "talon serve --listen 127.0.0.1:7071")
	}
	bound, _ := ln.Addr().(*net.TCPAddr)
	loopback := bound != nil && bound.IP.IsLoopback()
	if !loopback && !cfg.Exposable() {
		// "localhost" that resolves to another address: without TLS and
		// an auth source the API must not be reachable from other hosts.
		ln.Close()
		return withHint(fmt.Errorf("listen on %s: bound %s, which is not a loopback address, and the config has no tls: and auth: (nor insecure: true)", cfg.Listen, ln.Addr()), "talon serve --listen 127.0.0.1:7070")
	}
	baseURL := serverURL(cfg.Listen, bound, ln.Addr(), cert != nil)
	// Runs call the server at the advertised URL: its address as other
	// hosts reach it, when the config says; else where it listens.
	runURL := baseURL
	if cfg.AdvertiseURL != "" {
		runURL = strings.TrimSuffix(cfg.AdvertiseURL, "/")
	}

	// Anonymous callers may do everything only on a loopback address
	// with no auth: configured — the API of a laptop or a single host.
	anonymousOK := loopback && len(cfgSources) == 0
	srv, err := server.New(ctx, st, server.Options{
		Schedule: sched, Load: load, Executors: exs, Logger: logger, LogDir: cfg.Logs,
		URL: runURL, CAFile: runsCA(cfg, cert, runURL, logger), Lease: cfg.Lease,
		Auth: cfgSources, Anonymous: anonymousOK, SecureCookies: cert != nil,
		Reload: func(context.Context) []string {
			if cert == nil {
				return nil
			}
			if err := cert.Reload(); err != nil {
				logger.Error("tls reload refused; the old certificate keeps serving", "err", err)
				return []string{err.Error() + " (the old certificate keeps serving)"}
			}
			return nil
		},
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("server not started: %w", err)
	}
	defer srv.Close()
	e := srv.Engine
	logAccess(logger, cfg, loopback, anonymousOK, cert != nil)

	hs := api.NewHTTPServer(srv.API, api.HTTPLimits{})
	go func() {
		var err error
		if cert != nil {
			err = hs.ServeTLS(ln, cert.ServerConfig())
		} else {
			err = hs.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
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
				// Auth and TLS problems are logged as they are found.
				summary, _, err := srv.Reload(ctx)
				a := talon.AuditEntry{Actor: "SIGHUP", Action: "reload", Object: "schedule", Outcome: "ok", Detail: summary}
				if err != nil {
					logger.Error("schedule reload refused", "err", err)
					a.Outcome = "refused: " + err.Error()
				} else {
					logger.Info(summary)
				}
				// A reload by signal is audited like one through the API.
				if err := e.RecordAudit(ctx, a); err != nil {
					logger.Error("audit not recorded", "action", "reload", "err", err)
				}
			}
		}
	}()

	logger.Info("talon serving", "url", baseURL, "advertised", runURL, "schedule", cfg.Schedule, "jobs", len(sched.Jobs), "state", server.Redact(cfg.State), "instance", e.InstanceID())
	// Write the address for scripts that started us on port 0.
	fmt.Fprintf(g.stdout, "talon: serving %s\n", baseURL)

	err = srv.Run(ctx)
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shut)
	return err
}

// serverURL is the address runs and scripts reach the server at: the
// bound address, with a loopback host when it is bound to every
// interface (0.0.0.0, :: or none), which is no address to connect to:
// 127.0.0.1, or ::1 when listen named an IPv6 host. (Go binds every
// interface dual-stack, so 127.0.0.1 reaches [::]:PORT too.)
func serverURL(listen string, bound *net.TCPAddr, addr net.Addr, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	if bound == nil {
		return scheme + addr.String()
	}
	host := bound.IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
		if h, _, err := net.SplitHostPort(listen); err == nil && strings.Contains(h, ":") {
			host = net.IPv6loopback
		}
	}
	return scheme + net.JoinHostPort(host.String(), strconv.Itoa(bound.Port))
}

// runsCA is the CA file runs get as TALON_CA, so that `talon progress`
// in a job verifies the server: tls: ca: when set, else the certificate
// itself when it is self-signed, else none (the system's roots). It
// warns when the certificate does not name the host runs use.
func runsCA(cfg *config.Config, cert *tlscert.Keypair, url string, logger *slog.Logger) string {
	if cert == nil {
		return ""
	}
	if u, err := neturl.Parse(url); err == nil {
		if err := cert.Leaf().VerifyHostname(u.Hostname()); err != nil {
			logger.Warn("tls: the certificate does not name the address runs are given (TALON_URL); talon in jobs will refuse it", "url", url, "err", err)
		}
	}
	ca := cfg.TLS.CA
	if ca == "" && cert.SelfSigned() {
		ca = cert.CertFile()
	}
	if ca != "" {
		if abs, err := filepath.Abs(ca); err == nil {
			ca = abs
		}
	}
	return ca
}

// logAccess says at start who may use the API: anonymous access on or
// off, and loudly, at every start, when insecure: true exposes it.
func logAccess(logger *slog.Logger, cfg *config.Config, loopback, anonymousOK, tls bool) {
	var names []string
	for _, a := range cfg.Auth {
		names = append(names, a.Name)
	}
	if anonymousOK {
		logger.Info("anonymous access: on (listening on loopback with no auth: configured): every local user may do everything, as admin")
	} else {
		logger.Info("anonymous access: off: requests need a token (healthz excepted)", "auth", strings.Join(names, ","))
	}
	if !loopback && (!tls || len(names) == 0) {
		logger.Warn("insecure: true: serving to other hosts without TLS or without authentication", "listen", cfg.Listen, "tls", tls, "auth", strings.Join(names, ","))
		if len(names) == 0 {
			logger.Warn("insecure: true without an auth: source: every request but healthz is refused, since anonymous access is for loopback only")
		}
	}
}

// executors returns the executors of the executor package's registry,
// plus local, inprocess and ssh unless it replaced them. (A program
// embedding Talon gives its own in scheduler.Config instead; the agent
// executor needs the store, and internal/server adds it.)
func executors(logger *slog.Logger, ssh sshexec.Settings) map[string]executor.Executor {
	out := map[string]executor.Executor{
		"local":     local.New(logger),
		"inprocess": inprocess.New(),
		"ssh":       sshexec.New(ssh, logger),
	}
	for _, name := range executor.Names() {
		if ex, err := executor.Get(name); err == nil {
			out[name] = ex
		}
	}
	return out
}

// sshSettings are the ssh executor's settings from the config, with the
// defaults of the user running talon serve: its name, its
// ~/.ssh/known_hosts and its ssh-agent.
func sshSettings(cfg *config.Config, getenv func(string) string) sshexec.Settings {
	s := sshexec.Settings{User: getenv("USER"), AgentSocket: getenv("SSH_AUTH_SOCK")}
	if home := getenv("HOME"); home != "" {
		s.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	if c := cfg.SSH; c != nil {
		if c.User != "" {
			s.User = c.User
		}
		if c.KeyFile != "" {
			s.KeyFile = cfg.Resolve(c.KeyFile)
		}
		if c.KnownHosts != "" {
			s.KnownHosts = cfg.Resolve(c.KnownHosts)
		}
		s.MaxSessionsPerHost = c.MaxSessionsPerHost
	}
	return s
}

// offlineOptions are what offline verbs (validate, calendar) check a
// schedule against: the executors serve would have, without building
// them.
func offlineOptions() schedule.Options {
	names := append([]string{"agent", "inprocess", "local", "ssh"}, executor.Names()...)
	slices.Sort(names)
	return schedule.Options{Executors: slices.Compact(names)}
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
