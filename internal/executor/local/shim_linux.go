package local

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// The supervisor of a local run ("shim") is this program started again
// by the scheduler, with shimEnv in its environment and the control
// socket as descriptor ctlFD. The protocol on the socket is lines of
// text; the first from the scheduler is a shimSpec in JSON:
//
//	scheduler → supervisor: SPEC | fence NANOSECONDS | cancel CAUSE
//	supervisor → scheduler: started PID | error NOTEXIST(0|1) MESSAGE | exit STATUS
//
// End of file from the scheduler means it died.
const (
	// shimEnv marks a supervisor; its value is the protocol's version.
	// The supervisor removes it before it starts the command, so a talon
	// that a job runs does not take itself for a supervisor.
	shimEnv     = "TALON_LOCAL_SHIM"
	shimVersion = "1"
	ctlFD       = 3
	// shimName is the supervisor's name in ps and top.
	shimName = "talon-shim"
)

// shimSpec says what the supervisor starts and how it guards it.
type shimSpec struct {
	// Path and Args are the command as the scheduler resolved it
	// (exec.Command in the scheduler's PATH).
	Path string   `json:"path"`
	Args []string `json:"args"`
	Dir  string   `json:"dir,omitempty"`
	// Grace is how long processes get between SIGTERM and SIGKILL.
	Grace time.Duration `json:"grace"`
	// Fence is the first self-fencing deadline, from now; 0 for none.
	Fence time.Duration `json:"fence,omitempty"`
	// Status is the status file to write at the end; "" for none.
	Status string `json:"status,omitempty"`
	Nonce  string `json:"nonce"`
	// Run is the run's id, recorded in the status file.
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
	// final report, and every run would end a second late.
	if v, ok := os.LookupEnv(shimEnv); ok {
		syscall.Exit(runShim(v))
	}
}

// runShim is the supervisor's main. It starts the command, reports its
// pid, guards it and its descendants until they are all gone, records
// how the command ended, and returns the supervisor's exit code.
func runShim(version string) int {
	var fst syscall.Stat_t
	if version != shimVersion || syscall.Fstat(ctlFD, &fst) != nil || fst.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		fmt.Fprintf(os.Stderr, "talon: %s=%s is set, but this process was not started as the supervisor of a local run; remove the variable from the environment\n", shimEnv, version)
		return 2
	}
	// The command must not inherit the socket: the scheduler's death is
	// seen as the end of file on it.
	syscall.CloseOnExec(ctlFD)
	ctl := os.NewFile(ctlFD, "talon-control")
	rd := bufio.NewReader(ctl)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return 2 // the scheduler died before it said what to run
	}
	var sp shimSpec
	if err := json.Unmarshal(line, &sp); err != nil {
		reply(ctl, "error 0 local supervisor: "+err.Error())
		return 2
	}
	_ = os.Unsetenv(shimEnv)
	setName(shimName)
	// Whoever signals the supervisor, it stops the command's tree before
	// it exits rather than leave it behind. A write to the scheduler after
	// it died must fail, not kill the supervisor with SIGPIPE.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// As the subreaper, the supervisor becomes the parent of every
	// descendant whose parent dies: a process that leaves the command's
	// group (setsid, double fork) is still found among its descendants.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		reply(ctl, "error 0 local supervisor: become subreaper: "+errno.Error())
		return 2
	}
	pid, err := startCommand(sp)
	if err != nil {
		notExist := 0
		if errors.Is(err, os.ErrNotExist) {
			notExist = 1
		}
		reply(ctl, fmt.Sprintf("error %d %s", notExist, err))
		return 0
	}
	s := &shim{ctl: ctl, sp: sp, main: pid}
	s.st.Nonce, s.st.Pid, s.st.Run, s.st.Started = sp.Nonce, s.main, sp.Run, time.Now().UTC()
	// A first record, before the scheduler hears of the start: should it
	// die (or freeze) before it records the run running, a peer still
	// finds this execution from the run alone (Locate) and neither loses
	// its outcome nor misses a process to kill.
	if sp.Status != "" {
		if err := writeStatus(sp.Status, s.st); err != nil {
			fmt.Fprintf(os.Stderr, "talon: local supervisor: %v\n", err)
		}
	}
	reply(ctl, "started "+strconv.Itoa(pid))
	s.run(rd, sigs)
	return 0
}

// startCommand starts the command as exec.Cmd would with a nil Stdin
// and the supervisor's own stdout and stderr (the scheduler's output
// pipe, handed on as is), and the same errors. syscall.ForkExec rather
// than os/exec: the supervisor waits for its children itself, and os
// would first fork a probe for pidfd support, on every run.
func startCommand(sp shimSpec) (int, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	pid, err := syscall.ForkExec(sp.Path, sp.Args, &syscall.ProcAttr{
		Dir:   sp.Dir,
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), 1, 2},
		// Its own group, as without a supervisor; SIGKILL if the
		// supervisor is killed (the scheduler then kills the rest).
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

// reply sends one line to the scheduler; if it is gone, nobody listens.
func reply(ctl *os.File, line string) {
	_, _ = ctl.WriteString(oneLine(line) + "\n")
}

// oneLine keeps a message on its line of the protocol.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// shim is the state of a supervisor once the command runs.
type shim struct {
	ctl  *os.File
	sp   shimSpec
	main int // the command's pid, which leads its process group
	st   runStatus

	mainDone bool // the command was reaped
	stopping bool // its tree got SIGTERM
	killing  bool // its tree gets SIGKILL until nothing is left
	graceC   <-chan time.Time
	tickC    <-chan time.Time
	// killDeadline is when the supervisor stops trying to kill
	// processes that survive SIGKILL.
	killDeadline time.Time
}

type ctlMsg struct {
	op    string // "fence", "cancel"
	d     time.Duration
	cause string
}

type reapMsg struct {
	ws        syscall.WaitStatus
	leftovers bool // the command's end left other processes
	done      bool // no process of the run is left
}

// killTick is how often a supervisor that is killing its tree looks for
// processes that a dying parent forked while it read /proc.
const killTick = 20 * time.Millisecond

func (s *shim) run(rd *bufio.Reader, sigs <-chan os.Signal) {
	ctlc := make(chan ctlMsg, 8)
	go readControl(rd, ctlc)
	reaped := make(chan reapMsg, 2)
	go reap(s.main, reaped)

	var fence *time.Timer
	var fenceC <-chan time.Time
	setFence := func(d time.Duration) {
		if fence == nil {
			fence = time.NewTimer(d)
			fenceC = fence.C
		} else {
			fence.Reset(d)
		}
	}
	if s.sp.Fence > 0 {
		setFence(s.sp.Fence)
	}
	for {
		select {
		case m, ok := <-ctlc:
			switch {
			case !ok:
				ctlc = nil
				s.stop(killedSchedulerDied, "", true)
			case m.op == "fence" && m.d > 0 && !s.killing:
				setFence(m.d)
			case m.op == "cancel":
				s.stop(killedCancel, m.cause, false)
			}
		case <-fenceC:
			s.stop(killedLease, "", true)
		case <-sigs:
			// The command gets the signal as if it were sent to it; its
			// outcome is its own.
			s.stop("", "", false)
		case <-s.graceC:
			s.kill()
		case <-s.tickC:
			if left := s.signalTree(syscall.SIGKILL); left > 0 && s.mainDone && time.Now().After(s.killDeadline) {
				// Processes it may not signal (they changed user, as
				// sudo's children do) must not hold the run forever.
				fmt.Fprintf(os.Stderr, "talon: local supervisor: %d processes of the run could not be killed; leaving them\n", left)
				s.finish()
				return
			}
		case r := <-reaped:
			if r.done {
				s.finish()
				return
			}
			s.mainDone = true
			if r.ws.Exited() {
				s.st.Exited, s.st.ExitCode = true, r.ws.ExitStatus()
			} else {
				s.st.Signal = int(r.ws.Signal())
			}
			// The command's own end is recorded at once, before its
			// leftovers are stopped (a grace period): a scheduler frozen
			// meanwhile, and a peer that recovers the run and kills this
			// supervisor, must not lose it.
			if s.sp.Status != "" && s.st.Killed == "" {
				if err := writeStatus(s.sp.Status, s.st); err != nil {
					fmt.Fprintf(os.Stderr, "talon: local supervisor: %v\n", err)
				}
			}
			if r.leftovers {
				// What the command left running ends with the run.
				s.stop("", "", false)
			}
		}
	}
}

// stop ends the run's tree: at once (SIGKILL) or gracefully (SIGTERM,
// SIGKILL after the grace period). killed says why, unless the command
// had already ended by itself; the first reason stands.
func (s *shim) stop(killed, cause string, now bool) {
	if killed != "" && !s.mainDone && s.st.Killed == "" {
		s.st.Killed, s.st.Cause = killed, cause
	}
	if now {
		s.kill()
		return
	}
	if s.stopping || s.killing {
		return
	}
	s.stopping = true
	s.signalTree(syscall.SIGTERM)
	s.graceC = time.After(s.sp.Grace)
}

func (s *shim) kill() {
	if s.killing {
		return
	}
	s.killing = true
	s.killDeadline = time.Now().Add(killTimeout)
	s.signalTree(syscall.SIGKILL)
	s.tickC = time.NewTicker(killTick).C
}

// signalTree sends sig to the command's process group and to every
// descendant of the supervisor, wherever its group, and returns how many
// descendants it found.
func (s *shim) signalTree(sig syscall.Signal) int {
	ps := procs()
	self := os.Getpid()
	desc := descendants(ps, map[int]bool{self: true})
	delete(desc, self)
	// Until the command is reaped its pid, hence its group id, cannot be
	// reused; after, only while a member of the group lives.
	group := !s.mainDone
	for _, p := range ps {
		if desc[p.pid] && p.pgid == s.main {
			group = true
		}
	}
	if group {
		_ = syscall.Kill(-s.main, sig)
	}
	for pid := range desc {
		_ = syscall.Kill(pid, sig)
	}
	return len(desc)
}

// finish records the outcome, in the status file and to the scheduler.
func (s *shim) finish() {
	s.st.Ended = time.Now().UTC()
	if s.sp.Status != "" {
		if err := writeStatus(s.sp.Status, s.st); err != nil {
			fmt.Fprintf(os.Stderr, "talon: local supervisor: %v\n", err)
		}
	}
	b, err := json.Marshal(s.st)
	if err != nil {
		return
	}
	reply(s.ctl, "exit "+string(b))
}

// readControl passes the scheduler's messages on, and closes out at the
// end of file: the scheduler died (or was killed: SIGKILL closes its
// descriptors too).
func readControl(rd *bufio.Reader, out chan<- ctlMsg) {
	defer close(out)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		op, arg, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch op {
		case "fence":
			if n, err := strconv.ParseInt(arg, 10, 64); err == nil {
				out <- ctlMsg{op: op, d: time.Duration(n)}
			}
		case "cancel":
			out <- ctlMsg{op: op, cause: arg}
		}
	}
}

// reap waits for every child of the supervisor: the command, and the
// descendants reparented to it. When there is none left, there is no
// descendant left either (an orphan would have become its child), and it
// reports done.
func reap(main int, out chan<- reapMsg) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WALL, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			out <- reapMsg{done: true}
			return
		}
		if pid == main {
			out <- reapMsg{ws: ws, leftovers: hasChildren()}
		}
	}
}

// hasChildren says whether the supervisor has a child, live or not yet
// reaped, without reaping it. The command's own children, if any, were
// reparented to the supervisor before the command could be reaped.
func hasChildren() bool {
	var info [128]byte // siginfo_t
	_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, 0 /* P_ALL */, 0, uintptr(unsafe.Pointer(&info[0])),
		syscall.WEXITED|syscall.WNOHANG|syscall.WNOWAIT|syscall.WALL, 0, 0)
	return errno != syscall.ECHILD
}
