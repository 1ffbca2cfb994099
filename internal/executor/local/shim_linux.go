package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The supervisor of local runs ("shim") is this program started again
// by the scheduler, once per Executor (on the first run, and again after
// it ended), with shimEnv in its environment and the control socket as
// descriptor ctlFD. It starts the runs' commands on request and guards
// them all. The protocol on the socket is lines of text; each message
// about a run names it by a number the scheduler chose (ID):
//
//	scheduler → supervisor: spawn ID SPEC | fence ID NANOSECONDS | cancel ID CAUSE
//	supervisor → scheduler: started ID PID | error ID NOTEXIST(0|1) MESSAGE | exit ID STATUS | log ID MESSAGE
//
// SPEC is a spawnSpec in JSON; when its Out is set, the message carries
// the write end of the run's output pipe (SCM_RIGHTS), which the command
// gets as its stdout and stderr. STATUS is a runStatus in JSON. End of
// file from the scheduler means it died.
const (
	// shimEnv marks a supervisor; its value is the protocol's version.
	// Commands never see it: each gets the environment the scheduler
	// sends for it.
	shimEnv     = "TALON_LOCAL_SHIM"
	shimVersion = "3"
	ctlFD       = 3
	// shimName is the supervisor's name in ps and top.
	shimName = "talon-shim"
)

// spawnSpec says what the supervisor starts and how it guards it.
type spawnSpec struct {
	// Path and Args are the command as the scheduler resolved it
	// (exec.Command in the scheduler's PATH); Env is its whole
	// environment, or with BaseEnv what follows the supervisor's own
	// (without shimEnv) in it.
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Dir     string   `json:"dir,omitempty"`
	Env     []string `json:"env"`
	BaseEnv bool     `json:"base_env,omitempty"`
	// Out says the message carries the output pipe; without it the
	// command writes to /dev/null.
	Out bool `json:"out,omitempty"`
	// Grace is how long processes get between SIGTERM and SIGKILL.
	Grace time.Duration `json:"grace"`
	// Fence is the first self-fencing deadline, from now; 0 for none.
	Fence time.Duration `json:"fence,omitempty"`
	// Status is the status stream to append the run's records to; ""
	// for none.
	Status string `json:"status,omitempty"`
	Nonce  string `json:"nonce"`
	// Run is the run's id, recorded in the status stream.
	Run int64 `json:"run"`
}

func init() {
	// An init function, not code in main: every program that imports
	// this package (talon, a program embedding Talon, a test binary) must
	// be able to act as the supervisor of its own local runs, since the
	// scheduler starts its own executable for that. Here it takes no code
	// in those programs' main, and the supervisor runs none of it: no
	// flags, no configuration, no store.
	//
	// It exits with syscall.Exit, not os.Exit: in a binary built with the
	// race detector (tests), os.Exit sleeps a second for the detector's
	// final report.
	if v, ok := os.LookupEnv(shimEnv); ok {
		// Named here, on the main thread, whose name ps and top show.
		setName(shimName)
		// Served from a goroutine of its own: the goroutine running init
		// is wired to the main thread until init ends, which would make
		// every wait of the serving loop a handoff between threads.
		code := make(chan int)
		go func() { code <- runShim(v) }()
		syscall.Exit(<-code)
	}
}

// runShim is the supervisor's main. It serves the scheduler's requests
// until the scheduler is gone (end of file) and every process it started
// is gone too, and returns the supervisor's exit code.
func runShim(version string) int {
	var fst syscall.Stat_t
	if version != shimVersion || syscall.Fstat(ctlFD, &fst) != nil || fst.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		fmt.Fprintf(os.Stderr, "talon: %s=%s is set, but this process was not started as the supervisor of local runs; remove the variable from the environment\n", shimEnv, version)
		return 2
	}
	// The commands must not inherit the socket: the scheduler's death is
	// seen as the end of file on it.
	syscall.CloseOnExec(ctlFD)
	f := os.NewFile(ctlFD, "talon-control")
	c, err := net.FileConn(f)
	f.Close()
	uc, ok := c.(*net.UnixConn)
	if err != nil || !ok {
		return 2
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 2
	}
	// One thread runs its code: it is all serialised by one lock, and
	// fewer threads to wake and put to sleep cost less at each run.
	runtime.GOMAXPROCS(1)
	// Whoever signals the supervisor, it stops the commands' trees
	// before they are reported, rather than leave them behind. A write to
	// the scheduler after it died must fail, not kill the supervisor
	// with SIGPIPE.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Every child's end is a SIGCHLD, registered before the first fork.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	// As the subreaper, the supervisor becomes the parent of every
	// descendant whose parent dies: a process that leaves its command's
	// group (setsid, double fork) is still found among its descendants.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		_, _ = uc.Write([]byte("log 0 become subreaper: " + errno.Error() + "\n"))
		return 2
	}
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, shimEnv+"=") {
			base = append(base, kv)
		}
	}
	s := &shim{
		self:    os.Getpid(),
		baseEnv: base,
		nullF:   null,
		null:    int(null.Fd()),
		runs:    map[uint64]*shimRun{},
		mains:   map[int]*shimRun{},
		quit:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		kidsBuf: make([]byte, 512),
	}
	go s.writeLoop(uc)
	go s.reapLoop(chld)
	go func() {
		for range sigs {
			s.mu.Lock()
			for _, r := range s.runs {
				// The command gets the signal as if it were sent to it;
				// its outcome is its own.
				s.stop(r, "", "", false)
			}
			s.mu.Unlock()
		}
	}()
	s.readLoop(uc)
	s.mu.Lock()
	s.dead = true
	for _, r := range s.runs {
		s.stop(r, killedSchedulerDied, "", true)
	}
	s.maybeQuit()
	s.mu.Unlock()
	<-s.quit
	s.killAll()
	return 0
}

// startCommand starts the command as exec.Cmd would, with the given
// stdout and stderr, and the same errors. syscall.ForkExec rather than
// os/exec: the supervisor waits for its children itself.
func (s *shim) startCommand(sp spawnSpec, out int) (int, error) {
	if out < 0 {
		out = s.null
	}
	env := sp.Env
	if sp.BaseEnv {
		env = append(s.baseEnv[:len(s.baseEnv):len(s.baseEnv)], env...)
	}
	pid, err := syscall.ForkExec(sp.Path, sp.Args, &syscall.ProcAttr{
		Dir:   sp.Dir,
		Env:   env,
		Files: []uintptr{uintptr(s.null), uintptr(out), uintptr(out)},
		// Its own group, as without a supervisor; SIGKILL if the
		// supervisor is killed (whoever kills it kills the rest).
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		return 0, &os.PathError{Op: "fork/exec", Path: sp.Path, Err: err}
	}
	return pid, nil
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER, which package syscall
// lacks.
const prSetChildSubreaper = 36

// setName sets the supervisor's name in /proc/PID/comm (ps, top), which
// would otherwise be "exe", from /proc/self/exe.
func setName(name string) {
	b := append([]byte(name), 0)
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0)
}

// oneLine keeps a message on its line of the protocol.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// shim is the state of a supervisor. mu guards it all; the goroutines
// that read the socket, reap children, start commands and fire timers
// each take it.
type shim struct {
	self int
	// baseEnv is the supervisor's environment but for shimEnv: the
	// scheduler's when it started the supervisor.
	baseEnv []string
	nullF   *os.File // kept, or the collector would close null
	null    int      // /dev/null, the commands' stdin

	streams streams // the status streams it appends to

	kids    *os.File // its main thread's children file (see children)
	kidsBuf []byte
	noKids  bool // the kernel has no children file

	mu       sync.Mutex
	runs     map[uint64]*shimRun // by the scheduler's ID, until reported
	mains    map[int]*shimRun    // by the command's pid, until reaped
	spawning int                 // spawn requests not yet started or failed
	dead     bool                // the scheduler's end closed
	quit     chan struct{}       // closed when dead with nothing left to guard
	quitting bool

	qmu    sync.Mutex
	queue  []string // lines for the scheduler, in order
	wake   chan struct{}
	broken bool // the scheduler can no longer be written to
}

// shimRun is one run the supervisor guards.
type shimRun struct {
	id     uint64
	sp     spawnSpec
	main   int // the command's pid, which leads its process group
	status *stream
	st     runStatus
	want   []string // the environment entries that mark its processes

	mainDone bool // the command was reaped
	stopping bool // its tree got SIGTERM
	killing  bool // its tree gets SIGKILL until nothing is left
	done     bool // reported
	grace    *time.Timer
	fence    *time.Timer
	tick     *time.Timer
	// killDeadline is when the supervisor stops trying to kill
	// processes that survive SIGKILL.
	killDeadline time.Time
}

// killTick is how often a supervisor that is killing a run's tree looks
// for processes that a dying parent forked while it read /proc.
const killTick = 20 * time.Millisecond

// send queues a line for the scheduler. It never blocks: a scheduler
// that is frozen must not stop the supervisor from guarding its runs.
func (s *shim) send(line string) {
	s.qmu.Lock()
	s.queue = append(s.queue, oneLine(line)+"\n")
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shim) writeLoop(c *net.UnixConn) {
	for range s.wake {
		s.qmu.Lock()
		q := s.queue
		s.queue = nil
		s.qmu.Unlock()
		if len(q) > 0 && !s.broken {
			if _, err := c.Write([]byte(strings.Join(q, ""))); err != nil {
				s.broken = true
			}
		}
	}
}

// readLoop serves the scheduler's messages until the end of file: the
// scheduler died (or was killed: SIGKILL closes its descriptors too), or
// let the supervisor go.
func (s *shim) readLoop(c *net.UnixConn) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	var pending []byte
	var fds []int
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			fds = append(fds, unixRights(oob[:oobn])...)
		}
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			line := string(pending[:i])
			pending = pending[i+1:]
			fds = s.handle(line, fds)
		}
		if err != nil || (n == 0 && oobn == 0) {
			for _, fd := range fds {
				syscall.Close(fd)
			}
			return
		}
	}
}

// unixRights returns the descriptors a control message carries.
func unixRights(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// handle acts on one message and returns the descriptors it left.
func (s *shim) handle(line string, fds []int) []int {
	op, rest, _ := strings.Cut(line, " ")
	idS, arg, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(idS, 10, 64)
	if err != nil {
		s.send("log 0 bad message from the scheduler: " + line)
		return fds
	}
	switch op {
	case "spawn":
		var sp spawnSpec
		if err := json.Unmarshal([]byte(arg), &sp); err != nil {
			s.send("error " + idS + " 0 local supervisor: " + err.Error())
			return fds
		}
		out := -1
		if sp.Out {
			if len(fds) == 0 {
				s.send("error " + idS + " 0 local supervisor: no output pipe came with the request")
				return fds
			}
			out, fds = fds[0], fds[1:]
		}
		s.mu.Lock()
		s.spawning++
		s.mu.Unlock()
		go s.spawn(id, sp, out)
	case "fence":
		n, err := strconv.ParseInt(arg, 10, 64)
		s.mu.Lock()
		if r := s.runs[id]; r != nil && err == nil && n > 0 && !r.killing {
			s.setFence(r, time.Duration(n))
		}
		s.mu.Unlock()
	case "cancel":
		s.mu.Lock()
		if r := s.runs[id]; r != nil {
			s.stop(r, killedCancel, arg, false)
		}
		s.mu.Unlock()
	}
	return fds
}

// spawn starts a run's command, writes its first record in the status
// stream and reports the start. Requests are served at once, each on its
// own goroutine: opening a file can take long on some file systems, and
// forks are serialised by the runtime anyway.
func (s *shim) spawn(id uint64, sp spawnSpec, out int) {
	idS := strconv.FormatUint(id, 10)
	var status *stream
	if sp.Status != "" {
		st, err := s.streams.acquire(sp.Status)
		if err != nil {
			s.send("log " + idS + " " + err.Error())
		} else {
			status = st
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spawning--
	// Under mu, so the command's end, however soon, is handled after it
	// is known as a run's.
	pid, err := s.startCommand(sp, out)
	if out >= 0 {
		syscall.Close(out)
	}
	if err != nil {
		s.streams.release(status)
		notExist := 0
		if errors.Is(err, os.ErrNotExist) {
			notExist = 1
		}
		s.send(fmt.Sprintf("error %s %d %s", idS, notExist, err))
		s.maybeQuit()
		return
	}
	r := &shimRun{id: id, sp: sp, main: pid, status: status,
		want: []string{"TALON_RUN_ID=" + strconv.FormatInt(sp.Run, 10), nonceEnv + "=" + sp.Nonce}}
	r.st.Nonce, r.st.Pid, r.st.Run, r.st.Started = sp.Nonce, pid, sp.Run, time.Now().UTC()
	s.runs[id] = r
	s.mains[pid] = r
	// A first record, before the scheduler hears of the start: should it
	// die (or freeze) before it records the run running, a peer still
	// finds this execution from the run alone (Locate) and neither loses
	// its outcome nor misses a process to kill.
	s.record(r)
	s.send("started " + idS + " " + strconv.Itoa(pid))
	if sp.Fence > 0 {
		s.setFence(r, sp.Fence)
	}
	if s.dead {
		s.stop(r, killedSchedulerDied, "", true)
	}
}

// record appends the run's status to its status stream, and returns it
// in JSON. mu is held.
func (s *shim) record(r *shimRun) []byte {
	b := r.st.appendJSON(make([]byte, 0, 256))
	if r.status != nil {
		if err := r.status.append(append(b, '\n')); err != nil {
			s.send("log " + strconv.FormatUint(r.id, 10) + " write status: " + err.Error())
		}
	}
	return b
}

func (s *shim) setFence(r *shimRun, d time.Duration) {
	if r.fence != nil {
		r.fence.Reset(d)
		return
	}
	r.fence = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !r.done {
			s.stop(r, killedLease, "", true)
		}
	})
}

// reapLoop waits for every child of the supervisor: the commands, and
// the descendants reparented to it.
func (s *shim) reapLoop(chld <-chan os.Signal) {
	for range chld {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|syscall.WALL, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			s.mu.Lock()
			if r := s.mains[pid]; r != nil {
				delete(s.mains, pid)
				s.mainExited(r, ws)
			}
			s.mu.Unlock()
		}
		// Any end may be the last of a run's leftovers.
		s.mu.Lock()
		for _, r := range s.runs {
			if r.mainDone && !s.leftovers(r) {
				s.finish(r)
			}
		}
		s.mu.Unlock()
	}
}

// mainExited records how the run's command ended. mu is held.
func (s *shim) mainExited(r *shimRun, ws syscall.WaitStatus) {
	r.mainDone = true
	if ws.Exited() {
		r.st.Exited, r.st.ExitCode = true, ws.ExitStatus()
	} else {
		r.st.Signal = int(ws.Signal())
	}
	if !s.leftovers(r) {
		s.finish(r)
		return
	}
	// The command's own end is recorded at once, before its leftovers
	// are stopped (a grace period): a scheduler frozen meanwhile, and a
	// peer that recovers the run and kills this supervisor, must not lose
	// it.
	if r.st.Killed == "" {
		s.record(r)
	}
	// What the command left running ends with the run.
	s.stop(r, "", "", false)
}

// leftovers says whether a process of the run is alive, cheaply enough
// to ask at every end: a member of its process group, or a child of the
// supervisor (an orphan it adopted) that is in the group or carries the
// run's TALON_RUN_ID and nonce. Every other process of the run descends
// from one of those. mu is held.
func (s *shim) leftovers(r *shimRun) bool {
	// Once the group is empty its id may be reused; as another run's
	// command, it is not this run's group.
	if s.mains[r.main] == nil {
		if err := syscall.Kill(-r.main, 0); err == nil || errors.Is(err, syscall.EPERM) {
			return true
		}
	}
	for _, c := range s.children() {
		p, ok := readProc(c)
		if ok && !p.zombie && (p.pgid == r.main || environHas(c, r.want...)) {
			return true
		}
	}
	return false
}

// children lists the supervisor's children that are not a going run's
// command: the orphans it adopted. The kernel hands an orphan to the
// subreaper's main thread (the first live one), so its children file
// lists them all; it is kept open and read again from the start, which
// costs one system call. Where the kernel has no such file, all of /proc
// is read.
func (s *shim) children() []int {
	if s.kids == nil && !s.noKids {
		f, err := os.Open("/proc/self/task/" + strconv.Itoa(s.self) + "/children")
		if err != nil {
			s.noKids = true
		} else {
			s.kids = f
		}
	}
	var out []int
	if s.kids != nil {
		buf := s.kidsBuf[:cap(s.kidsBuf)]
		for {
			n, err := s.kids.ReadAt(buf, 0)
			if err != nil && !errors.Is(err, io.EOF) {
				break
			}
			if n == len(buf) {
				buf = make([]byte, 2*len(buf))
				continue
			}
			s.kidsBuf = buf
			for _, f := range strings.Fields(string(buf[:n])) {
				if pid, err := strconv.Atoi(f); err == nil && s.mains[pid] == nil {
					out = append(out, pid)
				}
			}
			return out
		}
	}
	for _, p := range procs() {
		if p.ppid == s.self && s.mains[p.pid] == nil {
			out = append(out, p.pid)
		}
	}
	return out
}

// stop ends the run's tree: at once (SIGKILL) or gracefully (SIGTERM,
// SIGKILL after the grace period). killed says why, unless the command
// had already ended by itself; the first reason stands. mu is held.
func (s *shim) stop(r *shimRun, killed, cause string, now bool) {
	if r.done {
		return
	}
	if killed != "" && !r.mainDone && r.st.Killed == "" {
		r.st.Killed, r.st.Cause = killed, cause
	}
	if now {
		s.kill(r)
		return
	}
	if r.stopping || r.killing {
		return
	}
	r.stopping = true
	s.signalRun(r, syscall.SIGTERM)
	r.grace = time.AfterFunc(r.sp.Grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !r.done {
			s.kill(r)
		}
	})
}

func (s *shim) kill(r *shimRun) {
	if r.killing {
		return
	}
	r.killing = true
	r.killDeadline = time.Now().Add(killTimeout)
	s.signalRun(r, syscall.SIGKILL)
	r.tick = time.AfterFunc(killTick, func() { s.killTick(r) })
}

func (s *shim) killTick(r *shimRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return
	}
	left := s.signalRun(r, syscall.SIGKILL)
	if r.mainDone {
		if !s.leftovers(r) {
			s.finish(r)
			return
		}
		if left > 0 && time.Now().After(r.killDeadline) {
			// Processes it may not signal (they changed user, as sudo's
			// children do) must not hold the run forever.
			s.send(fmt.Sprintf("log %d %d processes of the run could not be killed; leaving them", r.id, left))
			s.finish(r)
			return
		}
	}
	r.tick.Reset(killTick)
}

// signalRun sends sig to the run's process group and to every
// descendant of the supervisor that is in the group or carries the run's
// TALON_RUN_ID and nonce, and to their descendants; it returns how many
// processes it found. mu is held.
func (s *shim) signalRun(r *shimRun, sig syscall.Signal) int {
	ps := procs()
	desc := descendants(ps, map[int]bool{s.self: true})
	delete(desc, s.self)
	// Until the command is reaped its pid, hence its group id, cannot be
	// reused; after, only while a member of the group lives.
	group := !r.mainDone
	roots := map[int]bool{}
	for _, p := range ps {
		if !desc[p.pid] {
			continue
		}
		if p.pgid == r.main && (!r.mainDone || s.mains[r.main] == nil) {
			group = true
			roots[p.pid] = true
		} else if s.mains[p.pid] == nil && environHas(p.pid, r.want...) {
			roots[p.pid] = true
		}
	}
	if group {
		_ = syscall.Kill(-r.main, sig)
	}
	tree := descendants(ps, roots)
	for pid := range tree {
		_ = syscall.Kill(pid, sig)
	}
	return len(tree)
}

// finish records the outcome, in the status stream and to the scheduler.
// mu is held.
func (s *shim) finish(r *shimRun) {
	if r.done {
		return
	}
	r.done = true
	for _, t := range []*time.Timer{r.grace, r.fence, r.tick} {
		if t != nil {
			t.Stop()
		}
	}
	r.st.Ended = time.Now().UTC()
	b := s.record(r)
	s.streams.release(r.status)
	r.status = nil
	delete(s.runs, r.id)
	s.send("exit " + strconv.FormatUint(r.id, 10) + " " + string(b))
	if len(s.runs) == 0 && !s.dead {
		s.sweep(r.sp.Grace)
	}
	s.maybeQuit()
}

// sweep stops, once no run is going, the processes that no run claims:
// orphans that left their group and dropped TALON_RUN_ID and the nonce
// from their environment, which only the end of every run they could
// belong to tells apart from a going run's. SIGTERM now, SIGKILL after
// grace to those still unclaimed. mu is held.
func (s *shim) sweep(grace time.Duration) {
	if len(s.children()) == 0 {
		return
	}
	s.signalUnclaimed(syscall.SIGTERM)
	time.AfterFunc(grace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.signalUnclaimed(syscall.SIGKILL)
	})
}

// signalUnclaimed sends sig to the supervisor's descendants that no
// going run claims. mu is held.
func (s *shim) signalUnclaimed(sig syscall.Signal) {
	ps := procs()
	desc := descendants(ps, map[int]bool{s.self: true})
	delete(desc, s.self)
	claimed := map[int]bool{}
	for _, r := range s.runs {
		roots := map[int]bool{}
		for pid := range desc {
			if r.main == pid || environHas(pid, r.want...) {
				roots[pid] = true
			}
		}
		for _, p := range ps {
			if desc[p.pid] && p.pgid == r.main && (!r.mainDone || s.mains[r.main] == nil) {
				roots[p.pid] = true
			}
		}
		for pid := range descendants(ps, roots) {
			claimed[pid] = true
		}
	}
	for pid := range desc {
		if !claimed[pid] && s.mains[pid] == nil {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// maybeQuit lets runShim end once the scheduler is gone and nothing is
// left to guard. mu is held.
func (s *shim) maybeQuit() {
	if s.dead && len(s.runs) == 0 && s.spawning == 0 && !s.quitting {
		s.quitting = true
		close(s.quit)
	}
}

// killAll kills whatever is left under the supervisor before it exits,
// and waits, boundedly, until it is gone.
func (s *shim) killAll() {
	deadline := time.Now().Add(killTimeout)
	for time.Now().Before(deadline) {
		ps := procs()
		desc := descendants(ps, map[int]bool{s.self: true})
		delete(desc, s.self)
		if len(desc) == 0 {
			return
		}
		for pid := range desc {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(killTick)
	}
}

// streams are the status streams a supervisor appends to, kept open
// while a run records in them, and a few more after: one open for all
// the runs of a log directory, instead of a file created per run.
type streams struct {
	mu   sync.Mutex
	open map[string]*stream
	idle int // streams open with no run
}

// maxIdleStreams is how many status streams a supervisor keeps open
// while no run records in them.
const maxIdleStreams = 16

// stream is an open status stream.
type stream struct {
	path string
	f    *os.File
	dev  uint64
	ino  uint64
	runs int // runs recording in it
}

// acquire returns the stream at path, opened (and created) if it is not
// open yet or if the file at path is no longer the one open (removed or
// replaced, with its directory or alone), for one more run until
// release.
func (ss *streams) acquire(path string) (*stream, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var fst syscall.Stat_t
	cur := ss.open[path]
	if cur != nil && (syscall.Stat(path, &fst) != nil || fst.Dev != cur.dev || fst.Ino != cur.ino) {
		// Its runs keep appending to the old file, which Recover can no
		// longer find: a run is only ever written in the file found
		// at its start.
		delete(ss.open, path)
		if cur.runs == 0 {
			ss.idle--
			cur.f.Close()
		}
		cur = nil
	}
	if cur == nil {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open status stream: %w", err)
		}
		if err := syscall.Fstat(int(f.Fd()), &fst); err != nil {
			f.Close()
			return nil, fmt.Errorf("open status stream: %w", err)
		}
		cur = &stream{path: path, f: f, dev: fst.Dev, ino: fst.Ino}
		if ss.open == nil {
			ss.open = map[string]*stream{}
		}
		ss.open[path] = cur
		ss.idle++
	}
	if cur.runs == 0 {
		ss.idle--
	}
	cur.runs++
	return cur, nil
}

// release counts a run off the stream (nil is none). A stream no run
// records in is kept open, unless too many are.
func (ss *streams) release(st *stream) {
	if st == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st.runs--
	if st.runs > 0 {
		return
	}
	if ss.open[st.path] != st {
		// Replaced while runs recorded in it.
		st.f.Close()
		return
	}
	ss.idle++
	if ss.idle > maxIdleStreams {
		delete(ss.open, st.path)
		ss.idle--
		st.f.Close()
	}
}

// append writes one record at the end of the stream, in one write: the
// stream is opened with O_APPEND, so the records of runs of several
// supervisors (other schedulers on this host) never mix.
func (st *stream) append(rec []byte) error {
	_, err := st.f.Write(rec)
	return err
}
