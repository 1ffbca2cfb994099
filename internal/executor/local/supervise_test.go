//go:build linux

package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/executortest"
	"github.com/talonhq/talon/internal/executor/local"
)

// miniEnv makes the test binary a mini scheduler: it starts one run
// through the local executor, prints its handle and then blocks, so a
// test can SIGKILL or SIGSTOP a real scheduler process.
const miniEnv = "TALON_TEST_MINI_SCHEDULER"

type miniSpec struct {
	Dir  string            `json:"dir"`
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env"`
}

func TestMain(m *testing.M) {
	if v := os.Getenv(miniEnv); v != "" {
		os.Exit(miniScheduler(v))
	}
	executortest.Main(m, conformance)
}

func miniScheduler(v string) int {
	var ms miniSpec
	if err := json.Unmarshal([]byte(v), &ms); err != nil {
		fmt.Fprintln(os.Stderr, "mini scheduler:", err)
		return 2
	}
	s := spec(ms.Dir, ms.Argv...)
	s.Job.Env = map[string]talon.EnvValue{}
	for k, v := range ms.Env {
		s.Job.Env[k] = talon.EnvValue{Value: v}
	}
	p, err := local.New(nil).Start(context.Background(), s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mini scheduler:", err)
		return 2
	}
	fmt.Printf("handle %s\n", p.Handle())
	// Block until killed; stdin stays open as long as the test holds it.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

type mini struct {
	cmd    *exec.Cmd
	handle string
	stdin  io.Closer
}

// startMini runs the test binary as a scheduler of one run and returns
// once the run has started.
func startMini(t *testing.T, ms miniSpec) *mini {
	t.Helper()
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), miniEnv+"="+string(b))
	cmd.Stderr = tWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mini{cmd: cmd, stdin: stdin}
	t.Cleanup(m.kill)
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		h, ok := strings.CutPrefix(strings.TrimSpace(l), "handle ")
		if !ok {
			t.Fatalf("mini scheduler said %q, want a handle", l)
		}
		m.handle = h
	case <-time.After(20 * time.Second):
		t.Fatal("mini scheduler did not start its run")
	}
	return m
}

// kill SIGKILLs the mini scheduler, as a crash would, and reaps it.
func (m *mini) kill() {
	if m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGCONT)
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.stdin.Close()
}

// treeScript starts processes in every way a job can leave its process
// group: a child with a grandchild, a setsid'd child, and a double-forked
// setsid'd orphan. Each writes its pid to $PIDS; treePids of them in all.
const treeScript = `echo $$ >> "$PIDS"
sh -c 'echo $$ >> "$PIDS"; sleep 300 & echo $! >> "$PIDS"; wait' &
setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &
(setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &)
wait`

const treePids = 5

// readPids waits, boundedly, until file holds n pids.
func readPids(t *testing.T, file string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(file)
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("pid file: %v", err)
			}
			pids = append(pids, pid)
		}
		if len(pids) >= n {
			t.Cleanup(func() {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d pids after 20s, want %d", file, len(pids), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAllGone waits, boundedly, until none of pids exists (a zombie
// counts as gone: it runs nothing, and init reaps it in its own time).
func waitAllGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alive []int
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range alive {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes %v of %v still alive", alive, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertAllGone checks at once that none of pids runs.
func assertAllGone(t *testing.T, pids []int) {
	t.Helper()
	var alive []int
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			alive = append(alive, pid)
		}
	}
	if len(alive) > 0 {
		t.Errorf("processes %v of %v still alive when the run ended", alive, pids)
	}
}

// waitEnded waits, boundedly, until the status file at path records the
// run's end (the supervisor writes a first record when the command
// starts, and the last when everything is gone).
func waitEnded(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Ended time.Time `json:"ended"`
		}
		if b, err := os.ReadFile(path); err == nil && json.Unmarshal(lastRecord(b), &st) == nil && !st.Ended.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s records no end after 20s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastRecord is the status a status file holds: its last complete line
// (the supervisor appends a record at each change).
func lastRecord(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	if len(lines) < 2 {
		return nil
	}
	return []byte(lines[len(lines)-2])
}

// statusPath is this host's status stream of the runs logging in the
// test's directory, the only run of which is the test's.
func statusPath(dir string) string {
	host, _ := os.Hostname()
	return filepath.Join(dir, "logs", "load", "runs."+host+".status")
}

// TestSchedulerDeathKillsTree: when the scheduler dies (SIGKILL), the
// whole tree of its run dies with it, including processes that left the
// process group, and a later Recover declares the run lost with why.
func TestSchedulerDeathKillsTree(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	m := startMini(t, miniSpec{Dir: dir, Argv: []string{"sh", "-c", treeScript}, Env: map[string]string{"PIDS": pidFile}})
	pids := readPids(t, pidFile, treePids)
	m.kill()
	waitAllGone(t, pids)

	waitEnded(t, statusPath(dir))
	_, err := local.New(testLogger(t)).Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, m.handle)
	if !errors.Is(err, executor.ErrLost) || !strings.Contains(err.Error(), "its scheduler died") {
		t.Errorf("Recover error = %v, want lost because its scheduler died", err)
	}
}

// TestRecoverKillsLiveSupervisor: a peer recovering the run of a frozen
// scheduler (SIGSTOP) on the same host kills the run's supervisor and
// its whole tree before it declares the run lost.
func TestRecoverKillsLiveSupervisor(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	m := startMini(t, miniSpec{Dir: dir, Argv: []string{"sh", "-c", treeScript}, Env: map[string]string{"PIDS": pidFile}})
	pids := readPids(t, pidFile, treePids)
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	_, err := local.New(testLogger(t)).Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, m.handle)
	if !errors.Is(err, executor.ErrLost) {
		t.Fatalf("Recover error = %v, want ErrLost", err)
	}
	// Recover returns only once everything is gone: a retry may start.
	assertAllGone(t, pids)
	t.Logf("Recover: %v", err)
}

// TestRecoverRecordedOutcome: a run that ended while its scheduler was
// down is re-attached with its real outcome, so a success is never
// recorded as a failure.
func TestRecoverRecordedOutcome(t *testing.T) {
	tests := []struct {
		name          string
		script        string
		wantSucceeded bool
		wantCode      int
		wantReason    string
	}{
		{name: "success", script: "exit 0", wantSucceeded: true, wantCode: 0, wantReason: "exit status 0"},
		{name: "failure", script: "exit 3", wantCode: 3, wantReason: "exit status 3"},
		{name: "signal", script: "kill -9 $$", wantCode: -1, wantReason: "killed by signal 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			m := startMini(t, miniSpec{Dir: dir, Argv: []string{"sh", "-c", tt.script}})
			waitEnded(t, statusPath(dir))
			m.kill()
			p, err := local.New(testLogger(t)).Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, m.handle)
			if err != nil {
				t.Fatalf("Recover: %v", err)
			}
			if p.Handle() != m.handle {
				t.Errorf("Handle = %q, want %q", p.Handle(), m.handle)
			}
			o := wait(t, p)
			if o.Succeeded != tt.wantSucceeded || o.ExitCode != tt.wantCode || o.Reason != tt.wantReason {
				t.Errorf("outcome = %+v, want succeeded %v, code %d, reason %q", o, tt.wantSucceeded, tt.wantCode, tt.wantReason)
			}
		})
	}
}

// TestRecoverLocated: a run whose scheduler died before it recorded the
// run's handle is found from the run alone (Locate): re-attached with its
// outcome when it ended; lost when it never started, or when the only
// record of its id beside its log is from before it was created (another
// deployment's run of the same id).
func TestRecoverLocated(t *testing.T) {
	dir := t.TempDir()
	m := startMini(t, miniSpec{Dir: dir, Argv: []string{"sh", "-c", "exit 0"}})
	waitEnded(t, statusPath(dir))
	m.kill()
	ex := local.New(testLogger(t))
	run := talon.Run{ID: 42, Job: "load"}
	logPath := filepath.Join(dir, "logs", "load", "42.log")
	p, err := ex.Recover(t.Context(), run, ex.Locate(run, logPath))
	if err != nil {
		t.Fatalf("Recover of a located run that ended: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Errorf("outcome = %+v, want its success", o)
	}
	// The log directory is shared with another host, whose scheduler
	// started the run.
	if err := os.Rename(statusPath(dir), filepath.Join(dir, "logs", "load", "runs.other-host.status")); err != nil {
		t.Fatal(err)
	}
	if p, err = ex.Recover(t.Context(), run, ex.Locate(run, logPath)); err != nil {
		t.Fatalf("Recover of a located run in another host's stream: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Errorf("outcome = %+v, want its success", o)
	}
	other := talon.Run{ID: 43, Job: "load"}
	if _, err := ex.Recover(t.Context(), other, ex.Locate(other, filepath.Join(dir, "logs", "load", "43.log"))); !errors.Is(err, executor.ErrLost) {
		t.Errorf("Recover of a run that never started, beside another's records: %v, want ErrLost", err)
	}
	later := talon.Run{ID: 42, Job: "load", Created: time.Now().Add(time.Hour)}
	if _, err := ex.Recover(t.Context(), later, ex.Locate(later, logPath)); !errors.Is(err, executor.ErrLost) {
		t.Errorf("Recover with the records of an execution from before the run was created: %v, want ErrLost", err)
	}
	empty := t.TempDir()
	if _, err := ex.Recover(t.Context(), run, ex.Locate(run, filepath.Join(empty, "logs", "load", "42.log"))); !errors.Is(err, executor.ErrLost) {
		t.Errorf("Recover of a run that never started: %v, want ErrLost", err)
	}
}

// TestStatusStreamSharedByRuns: the runs of one log directory record in
// one status stream, and each is recovered with its own outcome, from its
// handle or from the run alone.
func TestStatusStreamSharedByRuns(t *testing.T) {
	dir := t.TempDir()
	ex := local.New(testLogger(t))
	handles := map[int64]string{}
	for id := int64(1); id <= 5; id++ {
		s := spec(dir, "sh", "-c", "exit "+strconv.FormatInt(id, 10))
		s.Run.ID = id
		s.Env = []string{"TALON_RUN_ID=" + strconv.FormatInt(id, 10)}
		s.LogPath = filepath.Join(dir, "logs", "load", strconv.FormatInt(id, 10)+".log")
		p, err := ex.Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if o := wait(t, p); o.ExitCode != int(id) {
			t.Fatalf("run %d: outcome = %+v", id, o)
		}
		handles[id] = p.Handle()
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "logs", "load")); len(es) != 1+5 {
		t.Errorf("log directory holds %d files, want the stream and 5 logs", len(es))
	}
	for id, h := range handles {
		run := talon.Run{ID: id, Job: "load", Created: time.Now().Add(-time.Minute)}
		for _, h := range []string{h, ex.Locate(run, filepath.Join(dir, "logs", "load", strconv.FormatInt(id, 10)+".log"))} {
			p, err := ex.Recover(t.Context(), run, h)
			if err != nil {
				t.Fatalf("Recover run %d with %q: %v", id, h, err)
			}
			if o := wait(t, p); o.ExitCode != int(id) || o.Reason != "exit status "+strconv.FormatInt(id, 10) {
				t.Errorf("run %d recovered with %q: outcome = %+v, want its own exit status", id, h, o)
			}
		}
	}
}

// TestRecoverProtocol2StatusFile: a run recorded by a supervisor of
// protocol 2 (a status file per run, before an upgrade) is still
// recovered with its outcome, from its handle or from the run alone.
func TestRecoverProtocol2StatusFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "load")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const nonce = "0123456789abcdef0123456789abcdef"
	file := filepath.Join(dir, "7.status")
	started := time.Now().Add(-time.Minute).UTC()
	recs := fmt.Sprintf(`{"nonce":%q,"pid":999999,"run":7,"started":%q,"exited":false,"exit_code":0,"ended":"0001-01-01T00:00:00Z"}
{"nonce":%q,"pid":999999,"run":7,"started":%q,"exited":true,"exit_code":4,"ended":%q}
`, nonce, started.Format(time.RFC3339Nano), nonce, started.Format(time.RFC3339Nano), started.Add(time.Second).Format(time.RFC3339Nano))
	if err := os.WriteFile(file, []byte(recs), 0o600); err != nil {
		t.Fatal(err)
	}
	ex := local.New(testLogger(t))
	run := talon.Run{ID: 7, Job: "load", Created: started.Add(-time.Second)}
	for _, h := range []string{"pid:999999 nonce:" + nonce + " status:" + file, ex.Locate(run, filepath.Join(dir, "7.log"))} {
		p, err := ex.Recover(t.Context(), run, h)
		if err != nil {
			t.Fatalf("Recover with %q: %v", h, err)
		}
		if o := wait(t, p); o.ExitCode != 4 {
			t.Errorf("Recover with %q: outcome = %+v, want exit status 4", h, o)
		}
	}
}

// TestRecoverKillsLeftovers: Recover kills what is left of a run whose
// group leader is gone — members of its process group, and (with a
// handle that carries the run's nonce) processes that left the group —
// and never touches another deployment's run with the same id.
func TestRecoverKillsLeftovers(t *testing.T) {
	const nonce = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name       string
		handle     func(pgid int) string
		env        []string // of the leftover tree
		wantKilled bool
	}{
		{name: "old handle, leader gone", handle: func(pgid int) string { return "pid:" + strconv.Itoa(pgid) },
			env: []string{"TALON_RUN_ID=42"}, wantKilled: true},
		{name: "handle with nonce, leader gone", handle: func(pgid int) string { return fmt.Sprintf("pid:%d nonce:%s", pgid, nonce) },
			env: []string{"TALON_RUN_ID=42", "TALON_RUN_NONCE=" + nonce}, wantKilled: true},
		{name: "other deployment's run 42", handle: func(pgid int) string { return fmt.Sprintf("pid:%d nonce:%s", pgid+1, nonce) },
			env: []string{"TALON_RUN_ID=42", "TALON_RUN_NONCE=fedcba9876543210fedcba9876543210"}},
		{name: "other run in the group", handle: func(pgid int) string { return "pid:" + strconv.Itoa(pgid) },
			env: []string{"TALON_RUN_ID=7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			// The leader starts a group member and a setsid'd process,
			// then exits: nothing leads the group any more.
			cmd := exec.Command("sh", "-c", `sleep 300 & echo $! >> "$PIDS"
setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &
exit 0`)
			cmd.Env = append(append(os.Environ(), "PIDS="+pidFile), tt.env...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			pids := readPids(t, pidFile, 2)
			_, err := local.New(testLogger(t)).Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, tt.handle(cmd.Process.Pid))
			if !errors.Is(err, executor.ErrLost) {
				t.Fatalf("Recover error = %v, want ErrLost", err)
			}
			t.Logf("Recover: %v", err)
			if !tt.wantKilled {
				for _, pid := range pids {
					if syscall.Kill(pid, 0) != nil {
						t.Errorf("process %d was killed, want it left alone", pid)
					}
				}
				return
			}
			if !strings.Contains(tt.handle(cmd.Process.Pid), "nonce:") {
				// Without a nonce, the run's processes can only be told
				// from another deployment's run 42 inside its group: the
				// first pid is the group member.
				pids = pids[:1]
			}
			assertAllGone(t, pids)
		})
	}
}

// TestLeftoversDieWithTheRun: what a command leaves running when it
// exits is stopped before the run's outcome is known, so a retry never
// overlaps it.
func TestLeftoversDieWithTheRun(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	s := spec(dir, "sh", "-c", `sleep 300 & echo $! >> "$PIDS"
setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' > /dev/null 2>&1 &
while [ "$(wc -l < "$PIDS")" -lt 2 ]; do :; done
exit 3`)
	s.Job.Env = map[string]talon.EnvValue{"PIDS": {Value: pidFile}}
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	o := wait(t, p)
	if o.Succeeded || o.ExitCode != 3 || o.Reason != "exit status 3" {
		t.Errorf("outcome = %+v, want the command's own exit status 3", o)
	}
	assertAllGone(t, readPids(t, pidFile, 2))
}

// TestFence: a run whose deadline passes without a renewal dies with its
// whole tree; a renewal keeps it alive.
func TestFence(t *testing.T) {
	t.Run("deadline from the spec", func(t *testing.T) {
		t.Parallel()
		s := spec(t.TempDir(), "sleep", "300")
		s.FenceIn = 50 * time.Millisecond
		p, err := local.New(testLogger(t)).Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		o := wait(t, p)
		if o.Succeeded || o.Reason != "lost: its scheduler's lease expired; its supervisor killed it" {
			t.Errorf("outcome = %+v, want killed because the lease expired", o)
		}
	})
	t.Run("FenceIn kills the tree", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		pidFile := filepath.Join(dir, "pids")
		s := spec(dir, "sh", "-c", treeScript)
		s.Job.Env = map[string]talon.EnvValue{"PIDS": {Value: pidFile}}
		s.FenceIn = time.Hour
		p, err := local.New(testLogger(t)).Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		pids := readPids(t, pidFile, treePids)
		f, ok := p.(executor.Fencer)
		if !ok {
			p.Cancel(errors.New("test"))
			t.Fatalf("%T is not an executor.Fencer", p)
		}
		f.FenceIn(0) // ignored
		f.FenceIn(time.Millisecond)
		o := wait(t, p)
		if o.Succeeded || o.Reason != "lost: its scheduler's lease expired; its supervisor killed it" {
			t.Errorf("outcome = %+v, want killed because the lease expired", o)
		}
		assertAllGone(t, pids)
		f.FenceIn(time.Hour) // after the end: nothing happens
	})
	t.Run("renewed", func(t *testing.T) {
		t.Parallel()
		// The command outlives its first deadline: only the renewal
		// keeps it alive.
		s := spec(t.TempDir(), "sleep", "2")
		s.FenceIn = time.Second
		p, err := local.New(testLogger(t)).Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		f, ok := p.(executor.Fencer)
		if !ok {
			t.Fatalf("%T is not an executor.Fencer", p)
		}
		f.FenceIn(time.Hour)
		if o := wait(t, p); !o.Succeeded {
			t.Errorf("outcome = %+v, want success", o)
		}
	})
}

// TestCancelKillsEscapedDescendants: a cancel reaches processes that
// left the run's process group too.
func TestCancelKillsEscapedDescendants(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	s := spec(dir, "sh", "-c", treeScript)
	s.Job.Env = map[string]talon.EnvValue{"PIDS": {Value: pidFile}}
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pids := readPids(t, pidFile, treePids)
	p.Cancel(errors.New("cancelled by alice"))
	o := wait(t, p)
	if o.Succeeded || o.Reason != "cancelled by alice" {
		t.Errorf("outcome = %+v, want failed with reason %q", o, "cancelled by alice")
	}
	assertAllGone(t, pids)
}

// TestSupervisorInvisibleToJob: the job's environment is the one it
// always had plus TALON_RUN_NONCE; the supervisor's own marker does not
// leak (a talon run by the job would take itself for a supervisor).
func TestSupervisorInvisibleToJob(t *testing.T) {
	s := spec(t.TempDir(), "env")
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Fatalf("outcome = %+v", o)
	}
	env := readLog(t, s)
	if strings.Contains(env, "TALON_LOCAL_SHIM") {
		t.Errorf("job environment holds the supervisor's marker:\n%s", env)
	}
	if !strings.Contains(env, "\nTALON_RUN_NONCE=") {
		t.Errorf("job environment has no TALON_RUN_NONCE:\n%s", env)
	}
}

// TestSupervisorOutlivesSIGTERM: a SIGTERM to the supervisor (an
// operator's kill of the wrong pid) reaches the command, and the
// supervisor stays to report the command's own outcome.
func TestSupervisorOutlivesSIGTERM(t *testing.T) {
	s := spec(t.TempDir(), "sh", "-c", `trap 'exit 7' TERM; echo ready; while :; do sleep 0.01; done`)
	ready := make(chan struct{}, 1)
	s.OnLine = func(string) {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		p.Cancel(errors.New("test gave up"))
		t.Fatal("command not ready")
	}
	pid, err := strconv.Atoi(strings.Fields(strings.TrimPrefix(p.Handle(), "pid:"))[0])
	if err != nil {
		t.Fatal(err)
	}
	supervisor := parentOf(t, pid)
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(supervisor) + "/comm"); strings.TrimSpace(string(b)) != "talon-shim" {
		p.Cancel(errors.New("test gave up"))
		t.Fatalf("parent of the command is %q, want talon-shim", b)
	}
	if err := syscall.Kill(supervisor, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if o := wait(t, p); o.Succeeded || o.ExitCode != 7 || o.Reason != "exit status 7" {
		t.Errorf("outcome = %+v, want the command's own exit status 7", o)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// TestRecoverDuringLeftoverGrace: a command that exited 0 but left a
// process that ignores SIGTERM is still being cleaned up (the grace
// period) when a peer recovers the run: the success is recorded as soon
// as the command exits, so it is not lost with the supervisor.
func TestRecoverDuringLeftoverGrace(t *testing.T) {
	dir := t.TempDir()
	done := filepath.Join(dir, "done")
	m := startMini(t, miniSpec{Dir: dir, Argv: []string{"sh", "-c", `sh -c 'trap "" TERM; sleep 100' & touch "$DONE"; exit 0`}, Env: map[string]string{"DONE": done}})
	waitPath(t, done)
	// Well within the 5 s grace the leftover gets, the exit is on record.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Exited bool `json:"exited"`
		}
		if b, err := os.ReadFile(statusPath(dir)); err == nil && json.Unmarshal(lastRecord(b), &st) == nil && st.Exited {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p, err := local.New(testLogger(t)).Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, m.handle)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Errorf("outcome = %+v, want the command's success", o)
	}
}

// waitPath waits, boundedly, until path exists.
func waitPath(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written after 20s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEscapedLeftoverOutlivesSIGTERM: a process the command left outside
// its process group, which ignores SIGTERM, still holds the run until
// the grace period's SIGKILL, though other runs go on beside it under
// the same supervisor.
func TestEscapedLeftoverOutlivesSIGTERM(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	ex := local.New(testLogger(t))
	ex.Grace = 300 * time.Millisecond
	other, err := ex.Start(t.Context(), spec(t.TempDir(), "sleep", "300"))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	s := spec(dir, "sh", "-c", `setsid sh -c 'trap "" TERM; echo $$ >> "$PIDS"; while :; do sleep 0.05; done' > /dev/null 2>&1 &
while [ ! -s "$PIDS" ]; do sleep 0.01; done
exit 0`)
	s.Job.Env = map[string]talon.EnvValue{"PIDS": {Value: pidFile}}
	start := time.Now()
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	o := wait(t, p)
	if !o.Succeeded {
		t.Errorf("outcome = %+v, want the command's own success", o)
	}
	if d := time.Since(start); d < ex.Grace {
		t.Errorf("run ended after %v, before the grace period its leftover had", d)
	}
	assertAllGone(t, readPids(t, pidFile, 1))
	// Still going: the cancel is what ends it.
	other.Cancel(errors.New("test over"))
	if o := wait(t, other); o.Reason != "test over" {
		t.Errorf("other run's outcome = %+v, want it cancelled by the test", o)
	}
}

// TestSupervisorKilled: when the supervisor is killed (the OOM killer),
// its command dies with it, the run ends with why, and a process the
// command left behind, which holds the output open, is killed once
// WaitDelay has passed, with what it wrote before kept in the log.
func TestSupervisorKilled(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	s := spec(dir, "sh", "-c", `sh -c 'echo leftover; echo $$ >> "$PIDS"; exec sleep 300' & echo $$ >> "$PIDS"; wait`)
	s.Job.Env = map[string]talon.EnvValue{"PIDS": {Value: pidFile}}
	ex := local.New(testLogger(t))
	ex.WaitDelay = 200 * time.Millisecond
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	pids := readPids(t, pidFile, 2)
	pid, err := strconv.Atoi(strings.Fields(strings.TrimPrefix(p.Handle(), "pid:"))[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(parentOf(t, pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	o := wait(t, p)
	if o.Succeeded || !strings.HasPrefix(o.Reason, "local supervisor ended: ") {
		t.Errorf("outcome = %+v, want the supervisor's end", o)
	}
	assertAllGone(t, pids)
	if got := readLog(t, s); got != "leftover\n" {
		t.Errorf("log = %q, want what the leftover wrote", got)
	}
}
