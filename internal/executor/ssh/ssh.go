// Package ssh is the executor that runs a job's command on another host
// over SSH (executor: ssh), with golang.org/x/crypto/ssh.
//
// # Where and as whom
//
// A run goes to the address attribute of the first hosts/... resource it
// holds (in path order), else to the job's host: (HOST or HOST:PORT). It
// logs in as Settings.User with Settings.KeyFile, or with the keys of
// ssh-agent when no key file is set; a job's ssh: {user, key_file, port}
// overrides them. The host's key is checked against Settings.KnownHosts:
// an unknown or changed key is an error saying how to add it. A host's
// runs share a few connections (runsPerConn sessions each), and at most
// Settings.MaxSessionsPerHost runs go to one host at once; a start beyond
// that waits for one to end.
//
// # The remote side
//
// Every session runs one fixed command line (bootCommand) that reads a
// POSIX sh script from stdin, followed by the run's data: the command's
// argv, the job's env and the run's TALON_* variables, each value
// single-quoted (quote), so no parameter ever becomes shell text and
// nothing depends on sshd's AcceptEnv. Nothing of it appears in a command
// line on the host. The script (wrapperScript) starts a supervisor in a
// session of its own, which starts the command with setsid in its own
// session and process group, waits for it, stops what it left in its
// group, and records the exit status in a run directory on the host
// ($HOME/.talon/runs). The job's stdout and stderr go to a file there,
// which the scheduler's session streams into the run's log as it grows.
// The remote host needs /bin/sh, setsid (util-linux), GNU tail and
// /proc: a Linux host.
//
// # Cancel, timeout and fencing
//
// Cancel opens a new session that sends SIGTERM to the job's process
// group, and SIGKILL after Settings.Grace; the run ends once the
// supervisor saw the group gone. (Killing the ssh client, or closing the
// session, would leave the remote command running.) Processes that leave
// the job's session (setsid, daemons) are not followed.
//
// The supervisor has a lease: a watchdog kills the job's group when no
// scheduler renewed it in time. Renewals travel on the session's stdin.
// With a fencing deadline from the engine (a shared PostgreSQL), the lease
// is the engine's (the process is an executor.Fencer); without (SQLite),
// the executor renews Settings.Lease every third of it. So a run whose
// scheduler died, froze, or lost its connection to the host stops by
// itself within the lease, even if nothing can reach the host.
//
// # Dropped connections and restarts
//
// Each connection sends a keepalive request every Settings.Keepalive (5 s);
// one unanswered for twice as long closes it: a dropped connection is
// noticed within 15 s. The run then re-attaches over a new connection,
// from the last byte it logged, while its lease holds; if the host stays
// unreachable until the lease has lapsed (plus the grace), the run ends
// "lost", by which time the watchdog has stopped the job, so a retry
// never overlaps it. A run is never left running for longer than its
// lease without a scheduler that reaches its host.
//
// The handle holds the host, the run directory and the pids. A restarted
// scheduler's Recover (Reattach, with the run's log) re-attaches to a run
// still going, and streams its output on from where the run's log ends
// (with secrets, whose masking changes lengths, from what the old
// scheduler had acknowledged to the host: the lines written just before a
// crash may then appear twice);
// a run that ended meanwhile yields its recorded status. A run whose
// supervisor is gone without a status is lost, and what is left of it is
// killed. While its host cannot be reached, the recovered run stays
// running until its lease has surely lapsed, then is lost.
//
// The executor is not registered by an init function, since it needs its
// settings: the program wiring Talon calls
// executor.Register("ssh", ssh.New(settings, logger)).
package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"golang.org/x/crypto/ssh"
)

// Defaults of Settings.
const (
	DefaultMaxSessionsPerHost = 32
	DefaultLease              = 30 * time.Second
	DefaultGrace              = 5 * time.Second
	DefaultPort               = 22
	// startTimeout bounds a start: connecting, logging in and the remote
	// wrapper starting the command.
	startTimeout = time.Minute
)

// Settings are the executor's settings: executors: {ssh: …} in
// talon.yaml, with the defaults the CLI fills in.
type Settings struct {
	// User is whom runs log in as. Required unless every job sets one.
	User string
	// KeyFile is the private key to log in with; "" means the keys of the
	// ssh-agent at AgentSocket.
	KeyFile string
	// KnownHosts is the known_hosts file host keys are checked against.
	KnownHosts string
	// MaxSessionsPerHost caps the runs going to one host at once.
	// Default DefaultMaxSessionsPerHost.
	MaxSessionsPerHost int
	// AgentSocket is the ssh-agent's socket (SSH_AUTH_SOCK).
	AgentSocket string
	// Lease is how long a run goes on without its scheduler renewing it
	// when the engine sets no fencing deadline. Default DefaultLease.
	Lease time.Duration
	// Grace is how long a cancel waits after SIGTERM before SIGKILL.
	// Default DefaultGrace.
	Grace time.Duration
	// Keepalive is how often a connection is checked; one unanswered for
	// twice as long is closed. Default DefaultKeepalive.
	Keepalive time.Duration
}

// Executor runs commands on other hosts over SSH.
type Executor struct {
	settings Settings
	log      *slog.Logger
	pool     *pool

	keysMu sync.Mutex
	keys   map[string]ssh.Signer
}

var (
	_ executor.Executor   = (*Executor)(nil)
	_ executor.Reattacher = (*Executor)(nil)
)

// New returns an ssh executor with settings s (zero fields take their
// defaults) that logs to logger (nil discards).
func New(s Settings, logger *slog.Logger) *Executor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if s.MaxSessionsPerHost <= 0 {
		s.MaxSessionsPerHost = DefaultMaxSessionsPerHost
	}
	if s.Lease <= 0 {
		s.Lease = DefaultLease
	}
	if s.Grace <= 0 {
		s.Grace = DefaultGrace
	}
	if s.Keepalive <= 0 {
		s.Keepalive = DefaultKeepalive
	}
	e := &Executor{settings: s, log: logger, keys: map[string]ssh.Signer{}}
	e.pool = newPool(e)
	return e
}

// Close closes the executor's connections. Runs going on go on: their
// supervisors stop them when their leases lapse, unless a scheduler
// re-attaches first.
func (e *Executor) Close() error {
	e.pool.close()
	return nil
}

// targetOf is where s goes: see the package comment.
func (e *Executor) targetOf(s executor.Spec) (target, error) {
	t := target{User: e.settings.User, KeyFile: e.settings.KeyFile}
	port := DefaultPort
	if o := s.Job.SSH; o != nil {
		if o.User != "" {
			t.User = o.User
		}
		if o.KeyFile != "" {
			t.KeyFile = o.KeyFile
		}
		if o.Port != 0 {
			port = o.Port
		}
	}
	host := ""
	res := append([]executor.Resource(nil), s.Resources...)
	sort.Slice(res, func(i, j int) bool { return res[i].Path < res[j].Path })
	for _, r := range res {
		if !strings.HasPrefix(r.Path, "hosts/") {
			continue
		}
		host = r.Attributes["address"]
		if host == "" {
			return t, fmt.Errorf("resource %s has no address attribute: add attributes: {address: HOST[:PORT]} to it", r.Path)
		}
		break
	}
	if host == "" {
		host = s.Job.Host
	}
	if host == "" {
		return t, fmt.Errorf("job %s has no host: set host: HOST, or request a hosts/... resource with an address attribute", s.Job.Name)
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		t.Addr = host
	} else {
		t.Addr = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	}
	if t.User == "" {
		return t, fmt.Errorf("job %s: no user to log in to %s as: set executors: {ssh: {user: NAME}} in the config or ssh: {user: NAME} in the job", s.Job.Name, t.Addr)
	}
	return t, nil
}

// environ is what the job gets on top of the remote user's login
// environment: the job's literal env (sorted) then s.Env (the run's
// TALON_* variables and the job's secrets), later entries winning.
func environ(s executor.Spec) []string {
	keys := make([]string, 0, len(s.Job.Env))
	for k, v := range s.Job.Env {
		if !v.Secret() {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys)+len(s.Env))
	for _, k := range keys {
		env = append(env, k+"="+s.Job.Env[k].Value)
	}
	return append(env, s.Env...)
}

// outputs opens s's log (its file and the log store) and the stream of
// its lines for the engine. A run re-attached goes on with the stored log
// at its size (the engine stored what the dead scheduler's file held
// past it before).
func outputs(ctx context.Context, s executor.Spec, reattach bool) (out, lines *executor.Output, err error) {
	var off int64
	if reattach && s.Logs != nil {
		if off, err = s.Logs.LogSize(ctx, s.Run.ID); err != nil {
			return nil, nil, err
		}
	}
	if out, err = executor.NewOutput(executor.Spec{Run: s.Run, LogPath: s.LogPath, Logs: s.Logs, LogLimit: s.LogLimit, Secrets: s.Secrets},
		executor.OutputOptions{Offset: off}); err != nil {
		return nil, nil, err
	}
	lines, _ = executor.NewOutput(executor.Spec{Run: s.Run, OnLine: s.OnLine, Secrets: s.Secrets}, executor.OutputOptions{}) // opens no file
	return out, lines, nil
}

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Start starts s's command on its host and returns once the remote
// supervisor started it. An unknown host key, a refused login, a missing
// program or directory are errors saying so.
func (e *Executor) Start(ctx context.Context, s executor.Spec) (executor.Process, error) {
	if s.Job == nil || len(s.Job.Command) == 0 || s.Job.Command[0] == "" {
		return nil, errors.New("start: job has no command")
	}
	t, err := e.targetOf(s)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	p := e.newProcess(t, strconv.FormatInt(s.Run.ID, 10)+"-"+nonce(), s.Run)
	p.located = locatedPath(s.LogPath)
	if s.FenceIn > 0 {
		p.fenced = true
		p.fenceAt = time.Now().Add(s.FenceIn)
		p.lease = max(p.lease, s.FenceIn)
	}
	initial := p.lease
	if p.fenced {
		initial = s.FenceIn
	}
	pl, err := payload("main_start", [][2]string{
		{"run", p.run}, {"grace", centis(e.settings.Grace.Seconds())},
		{"lease", centis(initial.Seconds())}, {"jobdir", s.Job.Dir},
	}, environ(s), s.Job.Command)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	out, lines, err := outputs(ctx, s, false)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	p.out, p.lines = out, lines
	if p.located != "" {
		// Written before the host hears of the run, so a scheduler that
		// dies before it records the handle leaves a way to it.
		if err := os.WriteFile(p.located, []byte(p.Handle()+"\n"), 0o600); err != nil {
			out.Close()
			lines.Close()
			return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
		}
	}
	fail := func() {
		out.Close()
		lines.Close()
		if p.located != "" {
			_ = os.Remove(p.located)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := e.pool.acquire(ctx, t, true, false)
	if err != nil {
		fail()
		return nil, fmt.Errorf("start %s on %s: %w", s.Job.Name, t.Addr, err)
	}
	w, err := p.open(ctx, c, pl)
	if err != nil {
		e.pool.release(c)
		fail()
		return nil, fmt.Errorf("start %s on %s: %w", s.Job.Name, t.Addr, err)
	}
	ev, err := w.first(ctx)
	if err == nil {
		f := strings.Fields(ev)
		switch {
		case len(f) == 3 && f[0] == "started":
			p.j, _ = strconv.Atoi(f[1])
			p.w, _ = strconv.Atoi(f[2])
			if p.j <= 1 || p.w <= 1 {
				err = fmt.Errorf("the remote wrapper said %q", ev)
			}
		case ev == "notfound":
			err = fmt.Errorf("program %s not found on %s as %s", s.Job.Command[0], t.Addr, t.User)
		case ev == "nodir":
			err = fmt.Errorf("directory %s not found on %s", s.Job.Dir, t.Addr)
		default:
			err = fmt.Errorf("the remote wrapper on %s: %s", t.Addr, strings.TrimPrefix(ev, "error "))
		}
	}
	if err != nil {
		w.close()
		e.pool.release(c)
		fail()
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	p.upper = time.Now().Add(initial)
	p.log = p.log.With("pid", p.j)
	go p.loop(c, w)
	return p, nil
}

// handle is what the executor stores for a run:
//
//	ssh:USER@HOST:PORT run:DIR pid:JOB wpid:SUPERVISOR lease:SECONDS
//
// DIR is the run's directory under $HOME/.talon/runs on the host; JOB is
// the command's pid (also its process group); SECONDS the longest lease
// the run was given, which bounds how long it may still run unrenewed.
func (p *process) Handle() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := fmt.Sprintf("ssh:%s@%s run:%s pid:%d wpid:%d lease:%d", p.t.User, p.t.Addr, p.run, p.j, p.w, int(p.lease.Round(time.Second).Seconds()))
	if p.j == 0 {
		// Not reached yet (a located run whose host did not answer).
		return locatedPrefix + h
	}
	return h
}

type handle struct {
	user, addr, run string
	j, w            int // zero in a located handle
	lease           time.Duration
}

// locatedPrefix starts a located handle (see Locate):
//
//	located:ssh:USER@HOST:PORT run:DIR pid:0 wpid:0 lease:SECONDS
const locatedPrefix = "located:"

func parseHandle(s string) (handle, error) {
	var h handle
	s, located := strings.CutPrefix(s, locatedPrefix)
	f := strings.Fields(s)
	if len(f) != 5 {
		return h, errors.New("not an ssh handle")
	}
	who, ok := strings.CutPrefix(f[0], "ssh:")
	if !ok {
		return h, errors.New("not an ssh handle")
	}
	i := strings.LastIndex(who, "@")
	if i <= 0 {
		return h, errors.New("no user@host")
	}
	h.user, h.addr = who[:i], who[i+1:]
	var err error
	get := func(s, prefix string) string {
		v, ok := strings.CutPrefix(s, prefix)
		if !ok && err == nil {
			err = fmt.Errorf("no %s", strings.TrimSuffix(prefix, ":"))
		}
		return v
	}
	h.run = get(f[1], "run:")
	h.j, _ = strconv.Atoi(get(f[2], "pid:"))
	h.w, _ = strconv.Atoi(get(f[3], "wpid:"))
	secs, _ := strconv.Atoi(get(f[4], "lease:"))
	h.lease = time.Duration(secs) * time.Second
	if err != nil {
		return h, err
	}
	if !located && (h.j <= 1 || h.w <= 1) || secs <= 0 || strings.ContainsAny(h.run, "/.'") || h.run == "" {
		return h, errors.New("bad fields")
	}
	return h, nil
}

// locatedPath is the file beside a run's log that holds its located
// handle while it runs; "" without a log.
func locatedPath(logPath string) string {
	if logPath == "" {
		return ""
	}
	return logPath + ".ssh"
}

// Locate is the handle of a run whose scheduler died before it recorded
// one (executor.Locator): the located handle Start wrote beside the run's
// log before it reached the host. Recover then finds the pids in the
// run's directory on the host, or declares the run lost when the
// scheduler died before the run's supervisor started.
func (e *Executor) Locate(run talon.Run, logPath string) string {
	b, err := os.ReadFile(locatedPath(logPath))
	if err != nil || logPath == "" {
		return ""
	}
	hs := strings.TrimSpace(string(b))
	if h, err := parseHandle(hs); err != nil || !strings.HasPrefix(h.run, strconv.FormatInt(run.ID, 10)+"-") {
		return ""
	}
	return hs
}

var _ executor.Locator = (*Executor)(nil)

// Recover re-attaches to a run an earlier scheduler started, without a
// log: its output is not kept. The engine calls Reattach instead.
func (e *Executor) Recover(ctx context.Context, run talon.Run, hs string) (executor.Process, error) {
	return e.reattach(ctx, run, hs, nil, nil, nil, "", "", 0)
}

// Reattach re-attaches to a run an earlier scheduler started, from its
// handle, streaming the rest of its output into s's log. It returns an
// error wrapping executor.ErrLost when the run's supervisor is gone
// without a recorded end (having killed what was left of the job), or
// the handle is not this executor's. A run whose host cannot be reached
// is returned as a process that keeps trying to re-attach, and whose Wait
// returns "lost" once the run's lease has surely lapsed: by then its
// supervisor has stopped the job.
func (e *Executor) Reattach(ctx context.Context, s executor.Spec, hs string) (executor.Process, error) {
	var so *talon.SSHOptions
	if s.Job != nil {
		so = s.Job.SSH
	}
	out, lines, err := outputs(ctx, s, true)
	if err != nil {
		return nil, fmt.Errorf("%w: open its log: %v", executor.ErrLost, err)
	}
	// Without secrets the log holds the job's output byte for byte: its
	// size says exactly where to go on from, where the host's record of
	// what was acknowledged may lag behind the scheduler's death.
	logged := ""
	if fi, err := os.Stat(s.LogPath); err == nil && len(s.Secrets) == 0 && s.LogPath != "" {
		logged = strconv.FormatInt(fi.Size(), 10)
	}
	p, err := e.reattach(ctx, s.Run, hs, so, out, lines, locatedPath(s.LogPath), logged, s.FenceIn)
	if err != nil {
		out.Close()
		lines.Close()
	}
	return p, err
}

// logged is how much of the run's output its log holds, "" when unknown:
// the host then goes on from what it recorded as acknowledged.
func (e *Executor) reattach(ctx context.Context, run talon.Run, hs string, so *talon.SSHOptions, out, lines *executor.Output, located, logged string, fenceIn time.Duration) (executor.Process, error) {
	h, err := parseHandle(hs)
	if err != nil {
		return nil, fmt.Errorf("%w: scheduler restarted; handle %q is not an ssh run (%v)", executor.ErrLost, hs, err)
	}
	if id, _, _ := strings.Cut(h.run, "-"); id != strconv.FormatInt(run.ID, 10) {
		return nil, fmt.Errorf("%w: handle %q is another run's", executor.ErrLost, hs)
	}
	t := target{User: h.user, Addr: h.addr, KeyFile: e.settings.KeyFile}
	if so != nil && so.KeyFile != "" {
		t.KeyFile = so.KeyFile
	}
	p := e.newProcess(t, h.run, run)
	p.j, p.w = h.j, h.w
	p.out, p.lines = out, lines
	p.located = located
	p.lease = max(h.lease, e.settings.Lease)
	if fenceIn > 0 {
		p.fenced = true
		p.fenceAt = time.Now().Add(fenceIn)
	}
	// Until the run is reached, it may run as long as the longest lease
	// it was given.
	p.upper = time.Now().Add(p.lease)
	p.log = p.log.With("pid", p.j)
	actx, cancel := context.WithTimeout(ctx, dialTimeout+10*time.Second)
	defer cancel()
	c, w, ev, err := p.attach(actx, logged)
	switch {
	case err != nil:
		// The host cannot be reached: the run may be going. Keep trying
		// until its lease has surely lapsed.
		p.log.Warn("ssh re-attach: host unreachable; trying again until the run's lease has lapsed", "host", t.Addr, "err", err)
		go p.loop(nil, nil)
		return p, nil
	case strings.HasPrefix(ev, "lost "):
		w.close()
		e.pool.release(c)
		return nil, fmt.Errorf("%w: scheduler restarted; on %s, %s", executor.ErrLost, t.Addr, strings.TrimPrefix(ev, "lost "))
	}
	p.log.Info("re-attached to a run on its host", "host", t.Addr)
	go p.loop(c, w)
	return p, nil
}
