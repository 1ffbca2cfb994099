package local

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// setSysProcAttr gives a directly started command its own process group,
// so Cancel can signal everything it started, and asks the kernel to
// SIGKILL it when the scheduler dies. Pdeathsig fires when the OS thread
// that started the child exits; the Go runtime does not retire threads of
// goroutines that did not lock them, so in practice that is the
// scheduler's death.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}

func isNoProcess(err error) bool { return errors.Is(err, syscall.ESRCH) }

// signalReason says how a process that did not exit ended.
func signalReason(st *os.ProcessState) string {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return st.String()
}

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid, pgid int
	zombie          bool
}

// procs lists the processes of this host. Processes that end while it
// reads are left out.
func procs() []proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]proc, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return proc{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: ppid, pgid: pgid, zombie: f[0] == "Z" || f[0] == "X"}, true
}

// alive says whether pid exists and is not a zombie (a zombie runs
// nothing; its parent or init reaps it in its own time).
func alive(pid int) bool {
	p, ok := readProc(pid)
	return ok && !p.zombie
}

// environHas says whether the environment of pid holds every one of
// kvs ("KEY=VALUE"). Processes of other users cannot be read, and do not.
func environHas(pid int, kvs ...string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	found := 0
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		for _, want := range kvs {
			if string(kv) == want {
				found++
			}
		}
	}
	return found >= len(kvs)
}

// descendants returns the live descendants of the roots in ps, roots
// included.
func descendants(ps []proc, roots map[int]bool) map[int]bool {
	children := map[int][]int{}
	for _, p := range ps {
		if !p.zombie {
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	out := map[int]bool{}
	queue := make([]int, 0, len(roots))
	for pid := range roots {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if out[pid] {
			continue
		}
		out[pid] = true
		queue = append(queue, children[pid]...)
	}
	return out
}

// runProcs finds the live processes of the run that h names: with a
// nonce, every process whose environment holds the run's id and nonce;
// with an old handle, only the members of process group h.pid that hold
// the run's id (without a nonce nothing else tells the run from another
// deployment's run of the same id). Then the members of group h.pid, if
// one of them is the run's (the group id cannot be reused while a member
// lives), and the descendants of all those. supervisors are the local
// supervisors among them and their parents.
func runProcs(ps []proc, runID int64, h handle) (all, supervisors map[int]bool) {
	want := []string{"TALON_RUN_ID=" + strconv.FormatInt(runID, 10)}
	if h.nonce != "" {
		want = append(want, nonceEnv+"="+h.nonce)
	}
	roots := map[int]bool{}
	groupOurs := false
	for _, p := range ps {
		if p.zombie || (h.nonce == "" && p.pgid != h.pid) {
			continue
		}
		if environHas(p.pid, want...) {
			roots[p.pid] = true
			groupOurs = groupOurs || p.pgid == h.pid
		}
	}
	if groupOurs {
		for _, p := range ps {
			if p.pgid == h.pid && !p.zombie {
				roots[p.pid] = true
			}
		}
	}
	all = descendants(ps, roots)
	supervisors = map[int]bool{}
	if h.nonce != "" {
		// A supervisor is the parent of the command and of the orphans
		// it adopted; one of protocol 1 (a supervisor per run) carries
		// the run's nonce itself.
		parent := map[int]int{}
		for _, p := range ps {
			parent[p.pid] = p.ppid
		}
		for pid := range all {
			for _, c := range []int{pid, parent[pid]} {
				if c > 1 && !supervisors[c] && isSupervisor(c) {
					supervisors[c] = true
				}
			}
		}
	}
	return all, supervisors
}

// isSupervisor says whether pid is a local supervisor, of any version.
func isSupervisor(pid int) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if bytes.HasPrefix(kv, []byte(shimEnv+"=")) {
			return true
		}
	}
	return false
}

// killRun SIGKILLs every live process of the run that h names (see
// runProcs), its supervisor first, and waits, boundedly, until they are
// gone. It returns how many processes it killed. Since a process can fork
// between the reading of /proc and its kill, it looks again until it
// finds none.
func killRun(log *slog.Logger, runID int64, h handle) int {
	killed := 0
	deadline := time.Now().Add(killTimeout)
	for {
		all, supervisors := runProcs(procs(), runID, h)
		if len(all) == 0 {
			return killed
		}
		if time.Now().After(deadline) {
			log.Error("processes of a lost run survive SIGKILL", "count", len(all))
			return killed
		}
		// The supervisor goes first and alone: once it is gone, it can
		// no longer record as the command's own outcome a kill made here.
		victims := supervisors
		if len(victims) == 0 {
			victims = all
		}
		for pid := range victims {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed++
			}
		}
		waitGone(victims, deadline)
	}
}

// killTimeout bounds how long killRun waits for SIGKILLed processes to
// go: only a process stuck in the kernel (uninterruptible I/O) takes
// longer.
const killTimeout = 10 * time.Second

// waitGone polls /proc until none of pids lives or the deadline passes.
// The processes are not this process's children, so there is nothing to
// wait on.
func waitGone(pids map[int]bool, deadline time.Time) {
	pause := time.Millisecond
	for time.Now().Before(deadline) {
		left := false
		for pid := range pids {
			if alive(pid) {
				left = true
				break
			}
		}
		if !left {
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}
