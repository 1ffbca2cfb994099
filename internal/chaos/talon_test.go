//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// buildTalon builds the talon binary of the repository into dir, static
// (CGO_ENABLED=0) as the README promises.
func buildTalon(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "talon")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/talon")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/talon: %w\n%s", err, out)
	}
	return bin, nil
}

// repoRoot is the module root, two levels above this package.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("module root not found above %s: %w", root, err)
	}
	return root, nil
}

// scheduler is one of the harness's `talon serve`: a fixed config, listen
// port and log directory, and the processes that ran it one after the
// other (a SIGKILL and restart starts a new one).
type scheduler struct {
	name string
	dir  string
	bin  string
	cfg  string

	mu    sync.Mutex
	procs []*talonProc
}

// talonProc is one process of a scheduler.
type talonProc struct {
	sched   *scheduler
	n       int // its index among the scheduler's processes
	cmd     *exec.Cmd
	pid     int
	started time.Time
	logPath string
	done    chan struct{}

	mu       sync.Mutex
	instance string    // Talon's instance id, read from its log
	killed   time.Time // when the harness SIGKILLed it
	stops    []interval
	exited   time.Time
}

func newScheduler(name, base, bin, state, schedulePath string, port int, lease time.Duration) (*scheduler, error) {
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &scheduler{name: name, dir: dir, bin: bin, cfg: filepath.Join(dir, "talon.yaml")}
	cfg := fmt.Sprintf("state: %s\nschedule: %s\nlisten: 127.0.0.1:%d\nlogs: %s\nlease: %s\n",
		state, schedulePath, port, filepath.Join(dir, "run-logs"), lease)
	return s, os.WriteFile(s.cfg, []byte(cfg), 0o644)
}

// start starts a new process of the scheduler. It does not wait for it to
// serve: a process started while the database is down waits for it.
func (s *scheduler) start() (*talonProc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &talonProc{sched: s, n: len(s.procs), done: make(chan struct{})}
	p.logPath = filepath.Join(s.dir, fmt.Sprintf("talon-%d.log", p.n))
	f, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p.cmd = exec.Command(s.bin, "serve", "--config", s.cfg)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Dir = s.dir
	// Should the harness itself die, its schedulers die with it.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p.pid = p.cmd.Process.Pid
	p.started = time.Now()
	go func() {
		_ = p.cmd.Wait()
		p.mu.Lock()
		p.exited = time.Now()
		p.mu.Unlock()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

// current is the scheduler's latest process.
func (s *scheduler) current() *talonProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.procs) == 0 {
		return nil
	}
	return s.procs[len(s.procs)-1]
}

func (s *scheduler) all() []*talonProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*talonProc(nil), s.procs...)
}

func (p *talonProc) String() string { return fmt.Sprintf("%s#%d (pid %d)", p.sched.name, p.n, p.pid) }

func (p *talonProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

var (
	servingRE  = regexp.MustCompile(`msg="talon serving".*\binstance=([0-9A-Za-z_-]+)`)
	servingURL = regexp.MustCompile(`talon: serving (http://\S+)`)
)

// instanceID reads the process's instance id from its log ("talon
// serving … instance=ID"); "" until it serves.
func (p *talonProc) instanceID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.instance != "" {
		return p.instance
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if m := servingRE.FindSubmatch(b); m != nil {
		p.instance = string(m[1])
	}
	return p.instance
}

// serving reports whether the process has said it serves.
func (p *talonProc) serving() bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && servingURL.Match(b)
}

// waitServing waits until the process serves, exits or ctx ends.
func (p *talonProc) waitServing(ctx context.Context) error {
	for !p.serving() {
		if !p.alive() {
			b, _ := os.ReadFile(p.logPath)
			return fmt.Errorf("%s exited before serving:\n%s", p, tail(b, 2000))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not serve: %w", p, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (p *talonProc) kill() time.Time {
	at := time.Now()
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	p.mu.Lock()
	if p.killed.IsZero() {
		p.killed = at
	}
	p.mu.Unlock()
	<-p.done
	return at
}

func (p *talonProc) stop() time.Time {
	at := time.Now()
	_ = syscall.Kill(p.pid, syscall.SIGSTOP)
	p.mu.Lock()
	p.stops = append(p.stops, interval{from: at})
	p.mu.Unlock()
	return at
}

func (p *talonProc) cont() time.Time {
	at := time.Now()
	_ = syscall.Kill(p.pid, syscall.SIGCONT)
	p.mu.Lock()
	if n := len(p.stops); n > 0 && p.stops[n-1].to.IsZero() {
		p.stops[n-1].to = at
	}
	p.mu.Unlock()
	return at
}

// faulted reports whether the harness had killed the process by t, or
// had it stopped at t or within after before t (a peer may act on what
// it read during the freeze a moment after SIGCONT).
func (p *talonProc) faulted(t time.Time, after time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.killed.IsZero() && !p.killed.After(t) {
		return true
	}
	for _, s := range p.stops {
		if !s.from.After(t) && (s.to.IsZero() || !t.After(s.to.Add(after))) {
			return true
		}
	}
	return false
}

// terminate ends the process as an operator would (SIGTERM), and kills
// it if it has not exited within grace.
func (p *talonProc) terminate(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.pid, syscall.SIGCONT)
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		return errors.New(p.String() + " did not exit within " + grace.String() + " of SIGTERM; killed")
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
