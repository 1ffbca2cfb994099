package ssh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"golang.org/x/crypto/ssh"
)

// retryEvery is how often a run whose connection dropped tries to
// re-attach, and a cancel that could not reach the host tries again.
const retryEvery = 2 * time.Second

// process is one run on a remote host. Its loop goroutine owns the
// session that streams the run's output; renewals and acks are written
// to that session's stdin.
type process struct {
	e   *Executor
	t   target
	run string // the run's directory name on the host
	j   int    // the job's pid (and process group)
	w   int    // the supervisor's pid
	// out is the run's log, lines its lines for the engine: apart, so
	// that what reached the log is acknowledged to the host before the
	// engine acts on a line (a scheduler that dies meanwhile repeats
	// little when another re-attaches).
	out, lines *executor.Output
	log        *slog.Logger
	located    string // the file of its located handle; "" for none

	mu       sync.Mutex
	lease    time.Duration // the longest lease given (in the handle)
	fenced   bool          // the engine sets the deadlines (FenceIn)
	fenceAt  time.Time     // the engine's deadline, when fenced
	stdin    io.Writer     // of the current session; nil while detached
	pending  []time.Duration
	sentAt   []time.Time
	upper    time.Time // the latest the host's deadline can be
	rtt      time.Duration
	received int64 // bytes of the job's output logged
	cause    error // the first Cancel's
	cancelOn bool  // a remote cancel is under way

	done    chan struct{}
	outcome executor.Outcome
}

var (
	_ executor.Process = (*process)(nil)
	_ executor.Fencer  = (*process)(nil)
)

func (e *Executor) newProcess(t target, run string, r talon.Run) *process {
	return &process{e: e, t: t, run: run, lease: e.settings.Lease, done: make(chan struct{}),
		log: e.log.With("run", r.ID, "job", r.Job, "host", t.Addr)}
}

// Wait returns the run's outcome once it ended.
func (p *process) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

// Cancel stops the run on its host: SIGTERM to the job's process group,
// SIGKILL after the grace, over a new session. The cause becomes the
// reason. It returns at once; Wait returns once the host reported the
// job's group gone, or (when the host cannot be reached) once the run's
// lease has lapsed, no longer renewed.
func (p *process) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.mu.Lock()
	if p.cause == nil {
		p.cause = cause
	}
	start := !p.cancelOn
	p.cancelOn = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	if start {
		go p.cancelRemote()
	}
}

// cancelRemote runs the wrapper's main_cancel until it got through or the
// run ended.
func (p *process) cancelRemote() {
	pl, _ := payload("main_cancel", [][2]string{
		{"run", p.run}, {"j", strconv.Itoa(p.j)}, {"grace", centis(p.e.settings.Grace.Seconds())},
	}, nil, nil)
	for {
		err := p.control(pl)
		if err == nil {
			return
		}
		p.log.Warn("ssh cancel: could not reach the host; trying again", "err", err)
		select {
		case <-p.done:
			return
		case <-time.After(retryEvery):
		}
	}
}

// control runs a short session that does not stream output.
func (p *process) control(pl string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout+p.e.settings.Grace+10*time.Second)
	defer cancel()
	c, err := p.e.pool.acquire(ctx, p.t, false, false)
	if err != nil {
		return err
	}
	sess, err := c.c.NewSession()
	if err != nil {
		// OpenSSH allows so many sessions per connection: use one of
		// its own.
		c2, derr := p.e.pool.dial(ctx, p.t)
		if derr != nil {
			return fmt.Errorf("open a session: %w", err)
		}
		defer c2.c.Close()
		if sess, err = c2.c.NewSession(); err != nil {
			return fmt.Errorf("open a session: %w", err)
		}
	}
	defer sess.Close()
	sess.Stdin = strings.NewReader(pl)
	var stderr strings.Builder
	sess.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- sess.Run(bootCommand) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if !strings.Contains(stderr.String(), "\x01talon done") {
		return fmt.Errorf("the remote wrapper did not answer (%v): %s", err, lastLines(stderr.String()))
	}
	return nil
}

// FenceIn moves the run's deadline on its host to d from now (less the
// last round trip, since the host counts from when the renewal arrives).
// The host's watchdog kills the job's group when it passes.
func (p *process) FenceIn(d time.Duration) {
	if d <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fenced = true
	p.fenceAt = time.Now().Add(d)
	p.renewLocked(d - p.rtt)
}

// renewLocked sends a renewal of d on the current session, if any.
func (p *process) renewLocked(d time.Duration) {
	if p.stdin == nil || p.cancelOn || d <= 0 {
		return
	}
	if _, err := fmt.Fprintf(p.stdin, "renew %s\n", centis(d.Seconds())); err == nil {
		p.pending = append(p.pending, d)
		p.sentAt = append(p.sentAt, time.Now())
	}
}

// renewed is the host's acknowledgement of the oldest renewal.
func (p *process) renewed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return
	}
	d, at := p.pending[0], p.sentAt[0]
	p.pending, p.sentAt = p.pending[1:], p.sentAt[1:]
	now := time.Now()
	p.rtt = now.Sub(at)
	// The host set its deadline before it answered: d from now is later.
	p.upper = now.Add(d)
}

// wrote records that n more bytes of output are in the run's log, and
// tells the host, so that a scheduler re-attaching goes on from there.
func (p *process) wrote(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received += int64(n)
	if p.stdin != nil {
		fmt.Fprintf(p.stdin, "ack %d\n", p.received)
	}
}

// giveUpAt is when the host has surely stopped the job, renewed by no
// one: its latest deadline, plus the watchdog's tick, the grace and a
// margin.
func (p *process) giveUpAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upper.Add(time.Second + p.e.settings.Grace + time.Second)
}

// session is one session of a run that streams its output: the start, or
// a re-attach.
type session struct {
	s      *ssh.Session
	events chan string   // control lines, closed when the session ended
	copied chan struct{} // closed once stdout is read to its end
	mu     sync.Mutex
	noise  []string // the last lines on stderr that were not control lines
}

// open starts a streaming session on c that runs the payload pl.
func (p *process) open(ctx context.Context, c *conn, pl string) (*session, error) {
	s, err := c.c.NewSession()
	if err != nil {
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) {
			// The connection is broken, though its end was not seen
			// yet: close it, so the pool dials anew.
			c.c.Close()
		}
		return nil, fmt.Errorf("open a session: %w", err)
	}
	stdin, err1 := s.StdinPipe()
	stdout, err2 := s.StdoutPipe()
	stderr, err3 := s.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Start(bootCommand); err != nil {
		s.Close()
		return nil, fmt.Errorf("run the remote wrapper: %w", err)
	}
	w := &session{s: s, events: make(chan string, 16), copied: make(chan struct{})}
	go func() {
		defer close(w.copied)
		buf := make([]byte, 32<<10)
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				_, _ = p.out.Write(buf[:n])
				p.wrote(n)
				_, _ = p.lines.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer close(w.events)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if ev, ok := strings.CutPrefix(line, "\x01talon "); ok {
				w.events <- ev
				continue
			}
			w.mu.Lock()
			w.noise = append(w.noise, line)
			if len(w.noise) > 5 {
				w.noise = w.noise[1:]
			}
			w.mu.Unlock()
		}
		_ = s.Wait()
	}()
	if _, err := io.WriteString(stdin, pl); err != nil {
		s.Close()
		return nil, fmt.Errorf("send the remote wrapper: %w", err)
	}
	p.mu.Lock()
	p.stdin = stdin
	p.mu.Unlock()
	return w, nil
}

// first waits for the session's first control line.
func (w *session) first(ctx context.Context) (string, error) {
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return "", fmt.Errorf("the session ended before the remote wrapper answered: %s", w.why())
			}
			if ev == "renewed" {
				continue
			}
			return ev, nil
		case <-ctx.Done():
			w.close()
			return "", fmt.Errorf("the remote wrapper did not answer: %w", context.Cause(ctx))
		}
	}
}

func (w *session) why() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.noise) == 0 {
		return "no output"
	}
	return strings.Join(w.noise, "; ")
}

func (w *session) close() { w.s.Close() }

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}

// attach opens a session that re-attaches to the run from offset off
// ("" for what the host recorded as acknowledged), with a new lease. It
// returns the session and its first control line: "attached N" or "lost
// …".
func (p *process) attach(ctx context.Context, off string) (*conn, *session, string, error) {
	p.mu.Lock()
	lease := p.lease
	if p.fenced {
		lease = time.Until(p.fenceAt)
	}
	if p.cancelOn {
		lease = 0
	}
	p.mu.Unlock()
	if lease <= 0 {
		// Not renewed: the host must not go on with it. Re-attaching
		// still reads its output and status.
		lease = time.Millisecond
	}
	pl, err := payload("main_attach", [][2]string{
		{"run", p.run}, {"j", pidVar(p.j)}, {"w", pidVar(p.w)},
		{"grace", centis(p.e.settings.Grace.Seconds())}, {"lease", centis(lease.Seconds())}, {"off", off},
	}, nil, nil)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := p.e.pool.acquire(ctx, p.t, true, true)
	if err != nil {
		return nil, nil, "", err
	}
	w, err := p.open(ctx, c, pl)
	if err != nil {
		p.e.pool.release(c)
		return nil, nil, "", err
	}
	ev, err := w.first(ctx)
	if err != nil {
		w.close()
		p.e.pool.release(c)
		return nil, nil, "", err
	}
	if rest, ok := strings.CutPrefix(ev, "attached "); ok {
		f := strings.Fields(rest)
		got, _ := strconv.ParseInt(f[0], 10, 64)
		p.mu.Lock()
		if p.j == 0 && len(f) == 3 {
			// A located run: its pids came from its directory.
			p.j, _ = strconv.Atoi(f[1])
			p.w, _ = strconv.Atoi(f[2])
		}
		p.received = got // the offset the host goes on from
		if !p.cancelOn {
			p.upper = time.Now().Add(lease)
		}
		p.mu.Unlock()
		if p.cancelOn {
			go p.cancelRemote()
		}
	}
	return c, w, ev, nil
}

// pidVar is a pid for the wrapper: "" when unknown (a located run).
func pidVar(pid int) string {
	if pid == 0 {
		return ""
	}
	return strconv.Itoa(pid)
}

// loop watches the run until it ends: the session's control lines, the
// renewals, and re-attaching when the connection drops.
func (p *process) loop(c *conn, w *session) {
	for {
		if w != nil {
			ev, ended := p.follow(w)
			p.e.pool.release(c)
			if ended {
				p.finish(ev)
				return
			}
			p.log.Warn("ssh connection to the run's host dropped; re-attaching", "why", w.why())
		}
		c, w = nil, nil
		for tries := 0; w == nil; tries++ {
			if time.Now().After(p.giveUpAt()) {
				p.finish("lost: could not reach " + p.t.Addr + " before the run's lease lapsed; its wrapper stopped the job then")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout+10*time.Second)
			var ev string
			var err error
			c, w, ev, err = p.attach(ctx, strconv.FormatInt(p.receivedBytes(), 10))
			cancel()
			switch {
			case err != nil:
				// The first try may have met the dead connection before
				// the pool knew it was dead: try again at once.
				p.log.Debug("ssh re-attach failed", "err", err)
				if tries > 0 {
					time.Sleep(retryEvery)
				}
			case strings.HasPrefix(ev, "lost "):
				w.close()
				p.e.pool.release(c)
				p.finish(ev)
				return
			default:
				p.log.Info("re-attached to the run after a dropped connection")
			}
		}
	}
}

func (p *process) receivedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received
}

// follow reads w's control lines and renews the lease, until the session
// ends. It returns the last line and whether it ended the run ("status …"
// or "lost …").
func (p *process) follow(w *session) (string, bool) {
	every := p.e.settings.Lease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	defer func() {
		p.mu.Lock()
		p.stdin = nil
		// A renewal the host never acknowledged may still have reached
		// it: count it as having arrived up to two keepalive intervals
		// (the time the connection had to answer) after it was sent.
		for i, d := range p.pending {
			if u := p.sentAt[i].Add(d + 2*p.e.settings.Keepalive); u.After(p.upper) {
				p.upper = u
			}
		}
		p.pending, p.sentAt = nil, nil
		p.mu.Unlock()
	}()
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return "", false
			}
			switch {
			case ev == "renewed":
				p.renewed()
			case strings.HasPrefix(ev, "status "), strings.HasPrefix(ev, "lost "):
				// Output goes before the status on the host; here it
				// comes on another stream: read it to its end.
				select {
				case <-w.copied:
				case <-time.After(10 * time.Second):
				}
				w.close()
				return ev, true
			}
		case <-tick.C:
			p.mu.Lock()
			if !p.fenced {
				p.renewLocked(p.e.settings.Lease)
			}
			p.mu.Unlock()
		}
	}
}

// finish records the outcome from the run's last control line.
func (p *process) finish(ev string) {
	if p.located != "" {
		_ = os.Remove(p.located)
	}
	p.out.Close()
	p.lines.Close()
	if err := p.out.Err(); err != nil {
		p.log.Warn("write run log", "err", err)
	}
	p.mu.Lock()
	cause := p.cause
	p.mu.Unlock()
	var o executor.Outcome
	if st, ok := strings.CutPrefix(ev, "status "); ok {
		f := strings.Fields(st)
		rc, err := strconv.Atoi(f[0])
		why := ""
		if len(f) > 1 {
			why = f[1]
		}
		switch {
		case err != nil:
			o = executor.Outcome{ExitCode: -1, Reason: "lost: the remote wrapper recorded " + strconv.Quote(st)}
		case why == "fenced" && cause == nil:
			o = executor.Outcome{ExitCode: -1, Reason: "lost: its scheduler's lease expired; the wrapper on " + p.t.Addr + " killed it"}
		case rc == 0:
			o = executor.Outcome{Succeeded: true, Reason: "exit status 0"}
		case rc > 128:
			o = executor.Outcome{ExitCode: -1, Reason: "killed by signal " + strconv.Itoa(rc-128)}
		default:
			o = executor.Outcome{ExitCode: rc, Reason: "exit status " + strconv.Itoa(rc)}
		}
	} else {
		o = executor.Outcome{ExitCode: -1, Reason: ev}
		if rest, ok := strings.CutPrefix(ev, "lost "); ok {
			o.Reason = "lost: on " + p.t.Addr + ", " + rest
		}
	}
	if cause != nil && !o.Succeeded {
		o.Reason = cause.Error()
	}
	p.outcome = o
	close(p.done)
}
