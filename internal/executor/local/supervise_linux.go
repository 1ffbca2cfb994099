package local

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/talonhq/talon/internal/executor"
)

// supervised says whether runs are started under a supervisor.
const supervised = true

// selfExe is this very program, even if its file was replaced (an
// upgrade) or removed since it started: the supervisor must speak the
// scheduler's protocol.
const selfExe = "/proc/self/exe"

// startSupervised starts the run's supervisor, which starts the command
// (see shim_linux.go), and returns once the command has started or could
// not start.
func (e *Executor) startSupervised(s executor.Spec, job *exec.Cmd, out *output, log *slog.Logger) (executor.Process, error) {
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	h := handle{nonce: hex.EncodeToString(nb[:])}
	if s.LogPath != "" {
		p, err := statusPath(s.LogPath)
		if err != nil {
			return nil, err
		}
		h.status = p
	}
	sp := shimSpec{Path: job.Path, Args: job.Args, Dir: s.Job.Dir, Grace: e.grace(), Status: h.status, Nonce: h.nonce, Run: s.Run.ID}
	if s.FenceIn > 0 {
		sp.Fence = s.FenceIn
	}
	spec, err := json.Marshal(sp)
	if err != nil {
		return nil, fmt.Errorf("start local supervisor: %w", err)
	}

	// A socket pair, not pipes: one descriptor carries both ways, and the
	// supervisor reads the end of file the moment the scheduler dies.
	// SOCK_CLOEXEC keeps the scheduler's end out of every other child, or
	// another run's supervisor would hold it open after the scheduler
	// died.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start local supervisor: control socket: %w", err)
	}
	// Non-blocking, so the scheduler's end is served by the runtime's
	// poller and writes can have a deadline.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, fmt.Errorf("start local supervisor: control socket: %w", err)
	}
	ctl := os.NewFile(uintptr(fds[0]), "talon-control")
	child := os.NewFile(uintptr(fds[1]), "talon-control")
	defer child.Close()

	cmd := exec.Command(selfExe)
	cmd.Args = []string{shimName, "run", strconv.FormatInt(s.Run.ID, 10), s.Job.Name}
	// The supervisor carries the run's id and nonce too, so Recover
	// finds it; it drops shimEnv before starting the command.
	cmd.Env = append(environ(s), nonceEnv+"="+h.nonce, shimEnv+"="+shimVersion)
	if out != nil {
		// One writer for both streams makes exec share one pipe, so the
		// log keeps the order in which the command wrote; the supervisor
		// hands the pipe to the command as is.
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.ExtraFiles = []*os.File{child}
	// Its own group: a terminal's ^C to the scheduler's group does not
	// reach it, and no Pdeathsig, since outliving the scheduler for the
	// moment it takes to kill the run's tree is its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = e.waitDelay()
	if err := cmd.Start(); err != nil {
		ctl.Close()
		// Not %w: this is not the command's program missing.
		return nil, fmt.Errorf("start local supervisor: %v", err)
	}
	child.Close()

	rd := bufio.NewReader(ctl)
	line, err := func() (string, error) {
		if _, err := ctl.Write(append(spec, '\n')); err != nil {
			return "", err
		}
		return rd.ReadString('\n')
	}()
	if err != nil {
		ctl.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("local supervisor ended before it started the command (%s): %v", cmd.ProcessState, err)
	}
	line = strings.TrimSuffix(line, "\n")
	if rest, ok := strings.CutPrefix(line, "error "); ok {
		ctl.Close()
		_ = cmd.Wait()
		notExist, msg, _ := strings.Cut(rest, " ")
		return nil, &shimStartError{msg: msg, notExist: notExist == "1"}
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "started "))
	if err != nil || !strings.HasPrefix(line, "started ") {
		// The supervisor is confused: it must not run the command on.
		ctl.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("start local supervisor: unexpected %q", line)
	}
	h.pid = pid
	p := &supervisedProcess{
		cmd:    cmd,
		ctl:    ctl,
		rd:     rd,
		out:    out,
		handle: h,
		runID:  s.Run.ID,
		grace:  e.grace(),
		log:    log.With("pid", pid, "supervisor", cmd.Process.Pid),
		done:   make(chan struct{}),
	}
	p.log.Debug("process started")
	go p.wait()
	return p, nil
}

// shimStartError is why the supervisor could not start the command.
type shimStartError struct {
	msg      string
	notExist bool
}

func (e *shimStartError) Error() string { return e.msg }

func (e *shimStartError) Is(target error) bool { return e.notExist && target == os.ErrNotExist }

// supervisedProcess is a command started by its supervisor.
type supervisedProcess struct {
	cmd    *exec.Cmd // the supervisor
	ctl    *os.File
	rd     *bufio.Reader
	out    *output
	handle handle
	runID  int64
	grace  time.Duration
	log    *slog.Logger

	done    chan struct{}
	outcome executor.Outcome

	wmu    sync.Mutex // writes to ctl, and its closing
	closed bool

	mu       sync.Mutex
	cause    error // set by the first Cancel before the end
	finished bool
}

var (
	_ executor.Process = (*supervisedProcess)(nil)
	_ executor.Fencer  = (*supervisedProcess)(nil)
)

func (p *supervisedProcess) Handle() string { return p.handle.String() }

func (p *supervisedProcess) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

func (p *supervisedProcess) wait() {
	var st *runStatus
	for {
		line, err := p.rd.ReadString('\n')
		if err != nil {
			break
		}
		if b, ok := strings.CutPrefix(line, "exit "); ok {
			var s runStatus
			if err := json.Unmarshal([]byte(b), &s); err == nil {
				st = &s
			}
		}
	}
	werr := p.cmd.Wait()
	p.out.close()
	p.wmu.Lock()
	p.closed = true
	p.ctl.Close()
	p.wmu.Unlock()

	var o executor.Outcome
	if st != nil {
		o = st.outcome()
	} else {
		// Someone killed the supervisor (the OOM killer, a peer that
		// recovered the run): the command got SIGKILL with it, and what
		// it started must not outlive the run either.
		if n := killRun(p.log, p.runID, p.handle); n > 0 {
			p.log.Warn("killed processes left by a dead supervisor", "count", n)
		}
		o = executor.Outcome{ExitCode: -1, Reason: fmt.Sprintf("local supervisor ended: %s", stateOr(p.cmd.ProcessState, werr))}
	}
	p.mu.Lock()
	p.finished = true
	cause := p.cause
	p.mu.Unlock()
	p.outcome = finish(o, cause, p.out, p.log)
	close(p.done)
}

func stateOr(st *os.ProcessState, err error) string {
	if st != nil {
		return signalReason(st)
	}
	return err.Error()
}

// send writes one message to the supervisor. The supervisor reads all
// the time, so the deadline only guards against a supervisor that is
// stopped (SIGSTOP) or gone.
func (p *supervisedProcess) send(msg string) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		return
	}
	_ = p.ctl.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := p.ctl.WriteString(oneLine(msg) + "\n"); err != nil {
		p.log.Debug("tell the supervisor", "msg", msg, "err", err)
	}
}

// FenceIn moves the run's self-fencing deadline to d from now, on the
// supervisor's monotonic clock.
func (p *supervisedProcess) FenceIn(d time.Duration) {
	if d <= 0 {
		return
	}
	p.send("fence " + strconv.FormatInt(int64(d), 10))
}

// Cancel has the supervisor send SIGTERM to the run's process group and
// every other descendant, and SIGKILL after the grace period. The cause
// becomes the outcome's reason, unless the command had already ended.
func (p *supervisedProcess) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.mu.Lock()
	if p.finished || p.cause != nil {
		p.mu.Unlock()
		return
	}
	p.cause = cause
	p.mu.Unlock()
	p.send("cancel " + cause.Error())
	// Should the supervisor not be done well after the grace period
	// (stopped, stuck), kill it: wait then kills what it left.
	time.AfterFunc(p.grace+killTimeout+cancelBackstop, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.finished {
			p.log.Warn("local supervisor did not stop the run; killing it")
			_ = p.cmd.Process.Kill()
		}
	})
}

// cancelBackstop is how long a cancelled run's supervisor may take to
// report, beyond the grace period and the time it may spend killing,
// before the scheduler kills it.
const cancelBackstop = 5 * time.Second
