package local

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// idleTimeout is how long an Executor keeps a supervisor that guards no
// run before it lets it go; the next run starts a new one.
const idleTimeout = 30 * time.Second

// supState is an Executor's supervisor, started with its first run.
type supState struct {
	supMu  sync.Mutex
	sup    *supervisor
	active int         // runs started on sup and not yet ended
	idle   *time.Timer // lets sup go once idle
}

// startSupervised has the executor's supervisor start the command (see
// shim_linux.go), and returns once the command has started or could not
// start.
func (e *Executor) startSupervised(s executor.Spec, job *exec.Cmd, out *executor.Output, log *slog.Logger) (executor.Process, error) {
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	h := handle{nonce: hex.EncodeToString(nb[:])}
	if s.LogPath != "" {
		p, err := streamPath(s.LogPath)
		if err != nil {
			return nil, err
		}
		h.status = p
	}
	sp := spawnSpec{
		Path: job.Path, Args: job.Args, Dir: s.Job.Dir,
		Grace: e.grace(), Status: h.status, Nonce: h.nonce, Run: s.Run.ID,
		Out: out != nil,
	}
	if s.FenceIn > 0 {
		sp.Fence = s.FenceIn
	}
	p := &supervisedProcess{
		e:         e,
		out:       out,
		handle:    h,
		runID:     s.Run.ID,
		grace:     e.grace(),
		waitDelay: e.waitDelay(),
		log:       log,
		ended:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	// A pipe per run, as os/exec makes one: the command writes to it and
	// the scheduler masks the output, splits lines and appends them to
	// the log (file and store: executor.Output). Only the read end is non-blocking (served by the runtime's
	// poller); the command gets a blocking write end.
	var pw = -1
	if out != nil {
		var fds [2]int
		if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		if err := syscall.SetNonblock(fds[0], true); err != nil {
			syscall.Close(fds[0])
			syscall.Close(fds[1])
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		p.pr = os.NewFile(uintptr(fds[0]), "talon-output")
		pw = fds[1]
	}
	sup, err := e.acquire()
	if err != nil {
		if pw >= 0 {
			syscall.Close(pw)
			p.pr.Close()
		}
		return nil, err
	}
	p.sup = sup
	// The nonce marks the run's processes, for its supervisor and for
	// Recover.
	sp.Env, sp.BaseEnv = sup.trimEnv(environ(s, nonceEnv+"="+h.nonce))
	pid, err := sup.spawn(sp, pw, p)
	if err != nil {
		if p.pr != nil {
			p.pr.Close()
		}
		e.release()
		return nil, err
	}
	p.handle.pid = pid
	p.log = log.With("pid", pid, "supervisor", sup.cmd.Process.Pid)
	p.log.Debug("process started")
	go p.wait()
	return p, nil
}

// acquire returns the executor's supervisor, starting one if it has none
// (or it ended), and counts a run on it until release.
func (e *Executor) acquire() (*supervisor, error) {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	if e.sup == nil || e.sup.ended() {
		sup, err := startSupervisor(e.log)
		if err != nil {
			return nil, err
		}
		e.sup = sup
	}
	e.active++
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
	return e.sup, nil
}

// release counts a run off. A supervisor that guards no run for
// idleTimeout is let go: it exits when its socket closes.
func (e *Executor) release() {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	e.active--
	if e.active > 0 || e.sup == nil {
		return
	}
	sup := e.sup
	e.idle = time.AfterFunc(idleTimeout, func() {
		e.supMu.Lock()
		defer e.supMu.Unlock()
		if e.active == 0 && e.sup == sup {
			e.sup = nil
			sup.close()
		}
	})
}

// supervisor is the scheduler's side of a supervisor process.
type supervisor struct {
	log  *slog.Logger
	cmd  *exec.Cmd
	conn *net.UnixConn
	// baseEnv is the environment the supervisor was started with, but
	// for shimEnv.
	baseEnv []string

	wmu sync.Mutex // writes to conn

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan string // spawn requests waiting for their reply
	procs   map[uint64]*supervisedProcess
	gone    bool   // the supervisor's end closed
	why     string // how the supervisor ended, once gone
}

// startSupervisor starts the supervisor process.
func startSupervisor(log *slog.Logger) (*supervisor, error) {
	// A socket pair, not pipes: one descriptor carries both ways, carries
	// the runs' output pipes, and the supervisor reads the end of file
	// the moment the scheduler dies. SOCK_CLOEXEC keeps the scheduler's
	// end out of every other child.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start local supervisor: control socket: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "talon-control")
	child := os.NewFile(uintptr(fds[1]), "talon-control")
	defer child.Close()
	c, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, fmt.Errorf("start local supervisor: control socket: %w", err)
	}
	conn := c.(*net.UnixConn)

	cmd := exec.Command(selfExe)
	cmd.Args = []string{shimName, "supervisor"}
	// Without duplicates, the supervisor's environment is this one
	// exactly, in this order (see trimEnv).
	base := dedupEnv(os.Environ())
	cmd.Env = append(base[:len(base):len(base)], shimEnv+"="+shimVersion)
	cmd.ExtraFiles = []*os.File{child}
	// Its own group: a terminal's ^C to the scheduler's group does not
	// reach it, and no Pdeathsig, since outliving the scheduler for the
	// moment it takes to kill the runs' trees is its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start local supervisor: %v", err)
	}
	sup := &supervisor{
		log:     log.With("supervisor", cmd.Process.Pid),
		cmd:     cmd,
		baseEnv: base,
		conn:    conn,
		pending: map[uint64]chan string{},
		procs:   map[uint64]*supervisedProcess{},
	}
	go sup.read()
	return sup, nil
}

func (sup *supervisor) ended() bool {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return sup.gone
}

// close lets an idle supervisor go: it reads the end of file and exits.
func (sup *supervisor) close() {
	sup.wmu.Lock()
	defer sup.wmu.Unlock()
	sup.conn.Close()
}

// trimEnv returns a command's environment as the supervisor is to be
// sent it: when it starts with the supervisor's own (the scheduler's
// environment did not change since the supervisor started, and the job
// replaces none of its variables), only what follows, and true; the
// supervisor then puts its own in front. It saves decoding the whole
// environment at every run.
func (sup *supervisor) trimEnv(env []string) ([]string, bool) {
	if len(env) < len(sup.baseEnv) {
		return env, false
	}
	for i, kv := range sup.baseEnv {
		if env[i] != kv {
			return env, false
		}
	}
	return env[len(sup.baseEnv):], true
}

// spawn asks the supervisor to start a run's command, with out (if not
// -1) as its stdout and stderr, and returns the command's pid. It closes
// out.
func (sup *supervisor) spawn(sp spawnSpec, out int, p *supervisedProcess) (int, error) {
	b, err := json.Marshal(sp)
	if err != nil {
		if out >= 0 {
			syscall.Close(out)
		}
		return 0, fmt.Errorf("start local supervisor: %w", err)
	}
	reply := make(chan string, 1)
	sup.mu.Lock()
	if sup.gone {
		sup.mu.Unlock()
		if out >= 0 {
			syscall.Close(out)
		}
		return 0, fmt.Errorf("local supervisor ended before it started the command (%s)", sup.why)
	}
	sup.nextID++
	id := sup.nextID
	p.id = id
	sup.pending[id] = reply
	sup.procs[id] = p
	sup.mu.Unlock()

	msg := []byte("spawn " + strconv.FormatUint(id, 10) + " " + string(b) + "\n")
	var oob []byte
	if out >= 0 {
		oob = syscall.UnixRights(out)
	}
	err = sup.write(msg, oob)
	if out >= 0 {
		// The supervisor has its own copy now, or never will.
		syscall.Close(out)
	}
	if err != nil {
		sup.mu.Lock()
		delete(sup.pending, id)
		delete(sup.procs, id)
		sup.mu.Unlock()
		return 0, fmt.Errorf("start local supervisor: %v", err)
	}
	line, ok := <-reply
	if !ok {
		return 0, fmt.Errorf("local supervisor ended before it started the command (%s)", sup.whyGone())
	}
	if rest, ok := strings.CutPrefix(line, "error "); ok {
		notExist, msg, _ := strings.Cut(rest, " ")
		return 0, &shimStartError{msg: msg, notExist: notExist == "1"}
	}
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 1 {
		// The supervisor is confused: it must not run the command on.
		_ = sup.cmd.Process.Kill()
		return 0, fmt.Errorf("start local supervisor: unexpected %q", line)
	}
	return pid, nil
}

func (sup *supervisor) whyGone() string {
	sup.mu.Lock()
	defer sup.mu.Unlock()
	return sup.why
}

// write sends one message. The supervisor reads all the time, so the
// deadline only guards against a supervisor that is stopped (SIGSTOP)
// or gone.
func (sup *supervisor) write(msg, oob []byte) error {
	sup.wmu.Lock()
	defer sup.wmu.Unlock()
	_ = sup.conn.SetWriteDeadline(time.Now().Add(time.Second))
	n, _, err := sup.conn.WriteMsgUnix(msg, oob, nil)
	if err == nil && n < len(msg) {
		// A stream socket may take part of it; the descriptor went with
		// the first part.
		_, err = sup.conn.Write(msg[n:])
	}
	return err
}

// send writes a message about a run, if the supervisor is still there.
func (sup *supervisor) send(p *supervisedProcess, msg string) {
	if err := sup.write([]byte(oneLine(msg)+"\n"), nil); err != nil {
		p.log.Debug("tell the supervisor", "msg", msg, "err", err)
	}
}

// read hands the supervisor's messages on until its end closes, then
// ends what it guarded.
func (sup *supervisor) read() {
	rd := bufio.NewReader(sup.conn)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			break
		}
		sup.handle(strings.TrimSuffix(line, "\n"))
	}
	werr := sup.cmd.Wait()
	sup.conn.Close()
	sup.mu.Lock()
	sup.gone = true
	sup.why = stateOr(sup.cmd.ProcessState, werr)
	for id, ch := range sup.pending {
		close(ch)
		delete(sup.pending, id)
	}
	procs := sup.procs
	sup.procs = nil
	sup.mu.Unlock()
	for _, p := range procs {
		p.end(nil)
	}
}

func (sup *supervisor) handle(line string) {
	op, rest, _ := strings.Cut(line, " ")
	idS, arg, _ := strings.Cut(rest, " ")
	id, _ := strconv.ParseUint(idS, 10, 64)
	sup.mu.Lock()
	defer sup.mu.Unlock()
	switch op {
	case "started", "error":
		if ch := sup.pending[id]; ch != nil {
			delete(sup.pending, id)
			if op == "error" {
				delete(sup.procs, id)
				arg = "error " + arg
			}
			ch <- arg
		}
	case "exit":
		p := sup.procs[id]
		if p == nil {
			return
		}
		delete(sup.procs, id)
		var st runStatus
		if err := json.Unmarshal([]byte(arg), &st); err != nil {
			p.log.Warn("local supervisor sent a bad status", "err", err)
			// The run ended, but how is not known: as if the supervisor
			// had died.
			p.end(nil)
			return
		}
		p.end(&st)
	case "log":
		if p := sup.procs[id]; p != nil {
			p.log.Warn("local supervisor", "msg", arg)
			if p.out != nil {
				_, _ = p.out.Write([]byte("talon: local supervisor: " + arg + "\n"))
			}
			return
		}
		sup.log.Warn("local supervisor", "msg", arg)
	}
}

// shimStartError is why the supervisor could not start the command.
type shimStartError struct {
	msg      string
	notExist bool
}

func (e *shimStartError) Error() string { return e.msg }

func (e *shimStartError) Is(target error) bool { return e.notExist && target == os.ErrNotExist }

// supervisedProcess is a command started by the supervisor.
type supervisedProcess struct {
	e         *Executor
	sup       *supervisor
	id        uint64
	out       *executor.Output
	pr        *os.File    // the output pipe's read end; nil without output
	drain     *time.Timer // closes pr WaitDelay after the end; set before ended closes
	handle    handle
	runID     int64
	grace     time.Duration
	waitDelay time.Duration
	log       *slog.Logger

	endOnce sync.Once
	ended   chan struct{} // closed when the supervisor reported, or ended
	st      *runStatus    // what it reported; nil if it ended first

	done    chan struct{}
	outcome executor.Outcome

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

// end is the supervisor's report of the run's end, or nil if the
// supervisor ended before it reported.
func (p *supervisedProcess) end(st *runStatus) {
	p.endOnce.Do(func() {
		p.st = st
		if p.pr != nil {
			// What the run's processes wrote is read to the end, for as
			// long as WaitDelay after its end if something (a process
			// the supervisor could not kill) still holds the pipe open.
			p.drain = time.AfterFunc(p.waitDelay, func() { p.pr.Close() })
		}
		close(p.ended)
	})
}

// wait copies the output to the end, and reports the outcome once the
// supervisor reported the end.
func (p *supervisedProcess) wait() {
	if p.pr != nil {
		// output.Write never fails, so this ends at the end of file:
		// when every process holding the write end is gone (or the
		// drain timer closed the pipe).
		_, _ = io.Copy(p.out, p.pr)
	}
	<-p.ended
	if p.pr != nil {
		p.drain.Stop()
		p.pr.Close()
	}
	_ = p.out.Close() // the store keeps trying by itself

	var o executor.Outcome
	if p.st != nil {
		o = p.st.outcome()
	} else {
		// Someone killed the supervisor (the OOM killer, a peer that
		// recovered one of its runs): the command got SIGKILL with it,
		// and what it started must not outlive the run either.
		if n := killRun(p.log, p.runID, p.handle); n > 0 {
			p.log.Warn("killed processes left by a dead supervisor", "count", n)
		}
		o = executor.Outcome{ExitCode: -1, Reason: "local supervisor ended: " + p.sup.whyGone()}
	}
	p.mu.Lock()
	p.finished = true
	cause := p.cause
	p.mu.Unlock()
	if p.st != nil && p.st.Killed == "" {
		// The command and all it started had ended by themselves when
		// the cancel reached the supervisor (a scheduler frozen past its
		// lease hears of the end only after it fenced): the end stands.
		cause = nil
	}
	p.outcome = finish(o, cause, p.out, p.log)
	close(p.done)
	p.e.release()
}

func stateOr(st *os.ProcessState, err error) string {
	if st != nil {
		return signalReason(st)
	}
	if err != nil {
		return err.Error()
	}
	return "unknown"
}

// FenceIn moves the run's self-fencing deadline to d from now, on the
// supervisor's monotonic clock.
func (p *supervisedProcess) FenceIn(d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-p.ended:
		return
	default:
	}
	p.sup.send(p, "fence "+strconv.FormatUint(p.id, 10)+" "+strconv.FormatInt(int64(d), 10))
}

// Cancel has the supervisor send SIGTERM to the run's process group and
// every other process of the run, and SIGKILL after the grace period.
// The cause becomes the outcome's reason, unless the command had already
// ended.
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
	p.sup.send(p, "cancel "+strconv.FormatUint(p.id, 10)+" "+cause.Error())
	// Should the supervisor not be done well after the grace period
	// (stopped, stuck), kill it: it is no use to any run, and wait then
	// kills what this run left.
	time.AfterFunc(p.grace+killTimeout+cancelBackstop, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.finished {
			p.log.Warn("local supervisor did not stop the run; killing it")
			_ = p.sup.cmd.Process.Kill()
		}
	})
}

// cancelBackstop is how long a cancelled run's supervisor may take to
// report, beyond the grace period and the time it may spend killing,
// before the scheduler kills it.
const cancelBackstop = 5 * time.Second
