// Package executortest is the conformance suite every executor runs
// against its real backend: local on this host, inprocess in this
// process, ssh on a real sshd, agent on real `talon agent` processes. It
// checks the promises of the executor contract (internal/executor) that
// the engine relies on: a run's outcome and exit status, its output in
// the run's log and in OnLine, its environment and arguments delivered
// byte for byte, a cancel or timeout that really stops everything the run
// started (checked on the backend, not by the executor's word), the
// self-fencing deadline of executors whose processes are Fencers, and a
// scheduler that dies mid-run: a later Recover either re-attaches to the
// run and gets its real outcome, or kills what is left and says it is
// lost — never a second copy of the run.
//
// A backend's test package wires it up in two places:
//
//	func TestMain(m *testing.M) { executortest.Main(m, backend) }
//	func TestConformance(t *testing.T) { executortest.Run(t, backend) }
//
// Main lets the test binary double as the scheduler that dies in the
// restart case (it is started again as a subprocess and SIGKILLed).
package executortest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
)

// Backend is an executor and what the suite needs to check it on its
// backend.
type Backend struct {
	// New returns a fresh executor, as a scheduler starting up makes it;
	// it is also called in the subprocess that plays the scheduler of the
	// restart case. An executor that is an io.Closer is closed when its
	// case ends. Its cancel grace should be short (a fraction of a
	// second), as the timeout case waits for it.
	New func() executor.Executor
	// Command is the argv of a job that behaves as j says: ShellCommand,
	// or a function that calls Behave.
	Command func(j Job) []string
	// Prepare, when set, completes a spec for the backend (e.g. the host
	// an ssh run goes to). It is called in the subprocess too.
	Prepare func(s *executor.Spec)
	// Left lists the processes still alive (zombies aside) whose command
	// line holds marker, as the backend sees them (PsLeft parses ps).
	// Nil when the backend's runs are not processes: NoProcesses then
	// says why, and the cases check what they can instead.
	Left        func(t *testing.T, marker string) []string
	NoProcesses string
	// NoExitStatus, when set, says why the backend's outcomes do not
	// carry the job's own exit status; the failing case then checks that
	// the run failed with the status in its reason.
	NoExitStatus string
	// NoJobEnv, when set, says why the backend does not take a job's own
	// env; the environment case then checks the run's alone.
	NoJobEnv string
	// NoIgnoreTerm, when set, says why a job cannot ignore SIGTERM on the
	// backend; the timeout case then cancels a job that does not.
	NoIgnoreTerm string
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"Succeeds", testSucceeds},
		{"Fails", testFails},
		{"Output", testOutput},
		{"Environment", testEnvironment},
		{"SecretsMasked", testSecretsMasked},
		{"NotFound", testNotFound},
		{"Cancel", testCancel},
		{"Timeout", testTimeout},
		{"CancelAfterEnd", testCancelAfterEnd},
		{"Fence", testFence},
		{"Restart", testRestart},
		{"RestartLocated", testRestartLocated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, b)
		})
	}
}

// waitBound bounds every wait of the suite: long enough for a loaded
// two-core machine, short enough that a hang fails the test.
const waitBound = 60 * time.Second

func newExecutor(t *testing.T, b Backend) executor.Executor {
	t.Helper()
	ex := b.New()
	if c, ok := ex.(io.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return ex
}

// newMarker is unique to a case and to this test process, so neither a
// parallel case nor another run of the suite on the same backend matches.
func newMarker(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("talon-ct-%s-%x", name, b)
}

func newRunID() int64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint32(b[:])>>1) + 1000
}

// spec is a run of job "conformance" doing j, logging under dir.
func spec(b Backend, dir string, j Job) executor.Spec {
	id := newRunID()
	s := executor.Spec{
		Run: talon.Run{ID: id, Job: "conformance", Period: "daily/2026-11-26", Attempt: 1, Executor: "test",
			Created: time.Now().Add(-time.Second)},
		Job: &talon.Job{Name: "conformance", Command: b.Command(j)},
		Env: []string{"TALON_RUN_ID=" + strconv.FormatInt(id, 10), "TALON_JOB=conformance",
			"TALON_PERIOD=daily/2026-11-26", "TALON_ATTEMPT=1"},
		LogPath: filepath.Join(dir, "logs", "conformance", strconv.FormatInt(id, 10)+".log"),
		Params:  []byte(`{}`),
	}
	if b.Prepare != nil {
		b.Prepare(&s)
	}
	return s
}

// lines collects OnLine's lines and signals each one.
type lines struct {
	mu  sync.Mutex
	all []string
	ch  chan string
}

func collect(s *executor.Spec) *lines {
	l := &lines{ch: make(chan string, 1024)}
	s.OnLine = func(line string) {
		l.mu.Lock()
		l.all = append(l.all, line)
		l.mu.Unlock()
		select {
		case l.ch <- line:
		default:
		}
	}
	return l
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// await waits, boundedly, for a line starting with prefix.
func (l *lines) await(t *testing.T, p executor.Process, prefix string) {
	t.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case line := <-l.ch:
			if strings.HasPrefix(line, prefix) {
				return
			}
		case <-timeout:
			p.Cancel(errors.New("test gave up"))
			t.Fatalf("no line %q from the job within %s; lines: %q", prefix, waitBound, l.get())
		}
	}
}

func start(t *testing.T, ex executor.Executor, s executor.Spec) executor.Process {
	t.Helper()
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(p) })
	return p
}

// stop cancels p and waits, boundedly, until it ended, so that nothing
// of it writes to the test's directories once they are removed.
func stop(p executor.Process) {
	p.Cancel(errors.New("test ended"))
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitBound):
	}
}

// wait waits, boundedly, for the outcome.
func wait(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitBound):
		p.Cancel(errors.New("test gave up"))
		t.Fatalf("run %s did not end within %s", p.Handle(), waitBound)
	}
	return executor.Outcome{}
}

func readLog(t *testing.T, s executor.Spec) string {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read log: %v", err)
	}
	return string(b)
}

// assertNoneLeft checks, on the backend, that no process of the job
// runs: at once, since an executor reports a run ended only when
// everything it started is gone (so a retry never overlaps it).
func assertNoneLeft(t *testing.T, b Backend, marker, when string) {
	t.Helper()
	if b.Left == nil {
		return
	}
	if left := b.Left(t, marker); len(left) > 0 {
		t.Errorf("%s, processes of the run are still alive:\n%s", when, strings.Join(left, "\n"))
	}
}

// assertSomeRunning checks that the job's processes are there, so that a
// later "none left" is not vacuous.
func assertSomeRunning(t *testing.T, b Backend, marker string) {
	t.Helper()
	if b.Left == nil {
		return
	}
	if left := b.Left(t, marker); len(left) == 0 {
		t.Fatalf("the backend shows no process of the running job (marker %s): Left cannot see it", marker)
	}
}

func testSucceeds(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeExit, Args: []string{"0"}}
	s := spec(b, t.TempDir(), j)
	p := start(t, newExecutor(t, b), s)
	if p.Handle() == "" {
		t.Error("Handle is empty: a restarted scheduler could not recover the run")
	}
	o := wait(t, p)
	if !o.Succeeded || o.ExitCode != 0 {
		t.Errorf("outcome = %+v, want success with exit code 0", o)
	}
	if o.Reason == "" {
		t.Error("outcome has no reason")
	}
	assertNoneLeft(t, b, j.Marker, "after the run succeeded")
}

func testFails(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeExit, Args: []string{"3"}}
	s := spec(b, t.TempDir(), j)
	o := wait(t, start(t, newExecutor(t, b), s))
	if o.Succeeded {
		t.Fatalf("outcome = %+v, want failure", o)
	}
	if b.NoExitStatus == "" && o.ExitCode != 3 {
		t.Errorf("outcome = %+v, want exit code 3", o)
	}
	if !strings.Contains(o.Reason, "exit status 3") {
		t.Errorf("reason = %q, want it to say exit status 3", o.Reason)
	}
	assertNoneLeft(t, b, j.Marker, "after the run failed")
}

// testOutput: stdout and stderr reach the run's log in order, and OnLine
// sees each line, progress directives included.
func testOutput(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeExit, Args: []string{"0"}}
	s := spec(b, t.TempDir(), j)
	l := collect(&s)
	if o := wait(t, start(t, newExecutor(t, b), s)); !o.Succeeded {
		t.Fatalf("outcome = %+v, want success", o)
	}
	want := "hello from " + j.Marker + "\n::talon progress 40%\nto stderr\n"
	if got := readLog(t, s); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if got, want := strings.Join(l.get(), "|"), strings.Join(strings.Split(strings.TrimSuffix(want, "\n"), "\n"), "|"); got != want {
		t.Errorf("OnLine lines = %q, want %q", got, want)
	}
}

// weird are values a shell would mangle if a parameter ever became shell
// text, or an environment channel that splits on spaces, newlines or
// quotes would cut.
var weird = []string{
	"two words",
	`"double" and 'single' quotes`,
	"$HOME ${PATH} $(id) $$",
	"a; echo injected; b",
	"`id`",
	"line one\nline two\n",
	"tab\there",
	"non-ASCII: ünïcødé ✓ 日本",
	`back\slash \n \' \\`,
	"*", "", " ", "-n", "--", "a=b",
	"!history ~user #comment & | < > ( ) { } [ ]",
}

// testEnvironment: the run's environment, the job's own env and the
// command's arguments reach the job byte for byte.
func testEnvironment(t *testing.T, b Backend) {
	keys := []string{"TALON_RUN_ID", "TALON_JOB", "TALON_PARAMS"}
	params, _ := json.Marshal(map[string]any{"weird": weird})
	want := []string{"", "conformance", string(params)}
	env := []string{"TALON_PARAMS=" + string(params)}
	for i, v := range weird {
		k := "TALON_TEST_W" + strconv.Itoa(i)
		env = append(env, k+"="+v)
		keys = append(keys, k)
		want = append(want, v)
	}
	jobEnv := map[string]talon.EnvValue{}
	if b.NoJobEnv == "" {
		for i, v := range weird {
			k := "JOB_W" + strconv.Itoa(i)
			jobEnv[k] = talon.EnvValue{Value: v}
			keys = append(keys, k)
			want = append(want, v)
		}
	} else {
		t.Logf("not checking the job's own env: %s", b.NoJobEnv)
	}
	j := Job{Marker: newMarker(t), Mode: ModeEcho, Args: append(append(append([]string{}, keys...), "--"), weird...)}
	s := spec(b, t.TempDir(), j)
	want[0] = strconv.FormatInt(s.Run.ID, 10)
	want = append(want, weird...)
	s.Env = append(s.Env, env...)
	s.Params = params
	s.Job.Env = jobEnv
	if o := wait(t, start(t, newExecutor(t, b), s)); !o.Succeeded {
		t.Fatalf("outcome = %+v, want success; log:\n%s", o, readLog(t, s))
	}
	got := strings.Split(strings.TrimSuffix(readLog(t, s), "\x00"), "\x00")
	if len(got) != len(want) {
		t.Fatalf("job printed %d values, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		name := "argument " + strconv.Itoa(i-len(keys))
		if i < len(keys) {
			name = "$" + keys[i]
		}
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", name, got[i], want[i])
		}
	}
}

// testSecretsMasked: a secret's value never reaches the run's log.
func testSecretsMasked(t *testing.T, b Backend) {
	const secret = "s3cr3t-v4lue with space"
	j := Job{Marker: newMarker(t), Mode: ModeEcho, Args: []string{"DB_PASSWORD", "--", "before " + secret + " after"}}
	s := spec(b, t.TempDir(), j)
	s.Env = append(s.Env, "DB_PASSWORD="+secret)
	s.Secrets = []string{secret}
	if o := wait(t, start(t, newExecutor(t, b), s)); !o.Succeeded {
		t.Fatalf("outcome = %+v, want success", o)
	}
	if got, want := readLog(t, s), executor.Mask+"\x00before "+executor.Mask+" after\x00"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// testNotFound: a command that does not exist fails to start with an
// error naming it, or fails the run saying so.
func testNotFound(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeMissing}
	s := spec(b, t.TempDir(), j)
	p, err := newExecutor(t, b).Start(t.Context(), s)
	if err != nil {
		if !strings.Contains(err.Error(), MissingProgram) {
			t.Errorf("Start error = %q, want it to name %s", err, MissingProgram)
		}
		return
	}
	o := wait(t, p)
	if o.Succeeded || !strings.Contains(o.Reason+readLog(t, s), MissingProgram) {
		t.Errorf("outcome = %+v, log %q: want a failure naming %s", o, readLog(t, s), MissingProgram)
	}
}

// testCancel: a cancel stops the job and its child, and its cause is
// the reason.
func testCancel(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeBlock}
	s := spec(b, t.TempDir(), j)
	l := collect(&s)
	p := start(t, newExecutor(t, b), s)
	l.await(t, p, "ready")
	assertSomeRunning(t, b, j.Marker)
	p.Cancel(errors.New("cancelled by alice"))
	o := wait(t, p)
	if o.Succeeded || o.Reason != "cancelled by alice" {
		t.Errorf("outcome = %+v, want failed with reason %q", o, "cancelled by alice")
	}
	if b.Left == nil {
		t.Logf("no process check: %s; the run's Wait returned, so the job saw the cancel", b.NoProcesses)
	}
	assertNoneLeft(t, b, j.Marker, "after the cancelled run ended")
}

// testTimeout: the engine times a run out by cancelling it with a
// "timeout after D" cause; a job that ignores SIGTERM is killed after the
// executor's grace, with everything it started.
func testTimeout(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeBlock, Args: []string{"ignoreterm"}}
	if b.NoIgnoreTerm != "" {
		t.Logf("the job does not ignore SIGTERM: %s", b.NoIgnoreTerm)
		j.Args = nil
	}
	s := spec(b, t.TempDir(), j)
	l := collect(&s)
	p := start(t, newExecutor(t, b), s)
	l.await(t, p, "ready")
	assertSomeRunning(t, b, j.Marker)
	p.Cancel(errors.New("timeout after 1s"))
	o := wait(t, p)
	if o.Succeeded || o.Reason != "timeout after 1s" {
		t.Errorf("outcome = %+v, want failed with reason %q", o, "timeout after 1s")
	}
	assertNoneLeft(t, b, j.Marker, "after the timed-out run ended")
}

func testCancelAfterEnd(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeExit, Args: []string{"0"}}
	p := start(t, newExecutor(t, b), spec(b, t.TempDir(), j))
	first := wait(t, p)
	p.Cancel(errors.New("too late"))
	if o := wait(t, p); o != first || !o.Succeeded {
		t.Errorf("outcome after a late cancel = %+v, want the original %+v", o, first)
	}
}

// testFence: a process that is an executor.Fencer stops its run by itself
// when its deadline passes without renewal.
func testFence(t *testing.T, b Backend) {
	j := Job{Marker: newMarker(t), Mode: ModeBlock}
	s := spec(b, t.TempDir(), j)
	s.FenceIn = time.Hour
	l := collect(&s)
	p := start(t, newExecutor(t, b), s)
	f, ok := p.(executor.Fencer)
	if !ok {
		t.Skipf("%T is not an executor.Fencer", p)
	}
	l.await(t, p, "ready")
	assertSomeRunning(t, b, j.Marker)
	f.FenceIn(0) // ignored: a late call never kills a run
	f.FenceIn(time.Second)
	begun := time.Now()
	o := wait(t, p)
	if o.Succeeded {
		t.Errorf("outcome = %+v, want failed when its deadline passed", o)
	}
	if d := time.Since(begun); d < time.Second {
		t.Errorf("run ended %s after FenceIn(1s), before its deadline", d)
	}
	t.Logf("fenced after %s: %s", time.Since(begun).Round(time.Millisecond), o.Reason)
	assertNoneLeft(t, b, j.Marker, "after the fenced run ended")
}

// testRestart: the scheduler that started a run dies (SIGKILL) mid-run; a
// new one's Recover re-attaches to the run and gets its real outcome, or
// declares it lost having killed what was left. Either way the job ran
// once.
func testRestart(t *testing.T, b Backend) { restart(t, b, false) }

// testRestartLocated: as testRestart, but the scheduler died before it
// recorded the run's handle: an executor.Locator finds the run from the
// run itself.
func testRestartLocated(t *testing.T, b Backend) { restart(t, b, true) }

func restart(t *testing.T, b Backend, locate bool) {
	j := Job{Marker: newMarker(t), Mode: ModeRun, Args: []string{"3", "3"}}
	s := spec(b, t.TempDir(), j)
	handle := startDying(t, s)
	ex := newExecutor(t, b)
	if locate {
		loc, ok := ex.(executor.Locator)
		if !ok {
			t.Skipf("%T is not an executor.Locator", ex)
		}
		if handle = loc.Locate(s.Run, s.LogPath); handle == "" {
			t.Fatal("Locate found nothing of a run that is going")
		}
		t.Logf("located: %s", handle)
	}
	p, err := recoverRun(t, ex, s, handle)
	if err != nil {
		if !errors.Is(err, executor.ErrLost) {
			t.Fatalf("Recover error = %v, want one wrapping ErrLost", err)
		}
		t.Logf("lost: %v", err)
		assertNoneLeft(t, b, j.Marker, "after Recover declared the run lost")
	} else {
		t.Cleanup(func() { stop(p) })
		o := wait(t, p)
		t.Logf("re-attached: %+v", o)
		if o.Succeeded || !strings.Contains(o.Reason, "exit status 3") {
			t.Errorf("re-attached outcome = %+v, want the job's own: failed with exit status 3", o)
		}
		if b.NoExitStatus == "" && o.ExitCode != 3 {
			t.Errorf("re-attached outcome = %+v, want exit code 3", o)
		}
		assertNoneLeft(t, b, j.Marker, "after the re-attached run ended")
		if _, ok := ex.(executor.Reattacher); ok {
			// Its output went on into the run's log, once.
			if n := strings.Count(readLog(t, s), "ended "+j.Marker); n != 1 {
				t.Errorf("the log shows the job's last line %d times, want once:\n%s", n, readLog(t, s))
			}
		}
	}
	if n := strings.Count(readLog(t, s), "started "+j.Marker); n != 1 {
		t.Errorf("the log shows the job started %d times, want once:\n%s", n, readLog(t, s))
	}
}

// recoverRun recovers the run as a restarted engine does: through
// Reattach, with the run's log, when the executor has it.
func recoverRun(t *testing.T, ex executor.Executor, s executor.Spec, handle string) (executor.Process, error) {
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	if ra, ok := ex.(executor.Reattacher); ok {
		return ra.Reattach(ctx, s, handle)
	}
	return ex.Recover(ctx, s.Run, handle)
}

// miniEnv holds the spec of the run the test binary starts as the
// scheduler that dies.
const miniEnv = "TALON_EXECUTORTEST_MINI"

type miniSpec struct {
	Run     talon.Run                 `json:"run"`
	Command []string                  `json:"command"`
	Env     []string                  `json:"env"`
	JobEnv  map[string]talon.EnvValue `json:"job_env"`
	LogPath string                    `json:"log_path"`
	Marker  string                    `json:"marker"`
}

// Main is TestMain for a backend's test package: it runs the tests, or,
// in the subprocess of the restart case, plays the scheduler that starts
// one run and is then killed.
func Main(m *testing.M, b Backend) {
	if v := os.Getenv(miniEnv); v != "" {
		os.Exit(mini(b, v))
	}
	os.Exit(m.Run())
}

// mini starts the run, waits until the job has said it started (so its
// first output reached the log), prints the run's handle and blocks.
func mini(b Backend, v string) int {
	var ms miniSpec
	if err := json.Unmarshal([]byte(v), &ms); err != nil {
		fmt.Fprintln(os.Stderr, "executortest mini scheduler:", err)
		return 2
	}
	s := executor.Spec{Run: ms.Run, Job: &talon.Job{Name: ms.Run.Job, Command: ms.Command, Env: ms.JobEnv},
		Env: ms.Env, LogPath: ms.LogPath, Params: []byte(`{}`)}
	if b.Prepare != nil {
		b.Prepare(&s)
	}
	started := make(chan struct{})
	var once sync.Once
	s.OnLine = func(line string) {
		if strings.HasPrefix(line, "started ") {
			once.Do(func() { close(started) })
		}
	}
	p, err := b.New().Start(context.Background(), s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "executortest mini scheduler: start:", err)
		return 2
	}
	select {
	case <-started:
	case <-time.After(waitBound):
		fmt.Fprintln(os.Stderr, "executortest mini scheduler: the job did not start")
		return 2
	}
	fmt.Printf("handle %s\n", p.Handle())
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed
	return 0
}

// startDying starts s from a scheduler in a subprocess, and SIGKILLs that
// scheduler once the job runs. It returns the handle the scheduler had
// recorded.
func startDying(t *testing.T, s executor.Spec) string {
	t.Helper()
	ms := miniSpec{Run: s.Run, Command: s.Job.Command, Env: s.Env, JobEnv: s.Job.Env, LogPath: s.LogPath}
	js, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), miniEnv+"="+string(js))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
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
	var exit error
	kill := func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		exit = cmd.Wait()
		_ = stdin.Close()
	}
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		kill()
		h, ok := strings.CutPrefix(strings.TrimSpace(line), "handle ")
		if !ok {
			t.Fatalf("the scheduler subprocess said %q and ended (%v), want a handle (does TestMain call executortest.Main?); stderr:\n%s", line, exit, stderr.String())
		}
		return h
	case <-time.After(waitBound):
		kill()
		t.Fatalf("the scheduler subprocess did not start its run within %s; stderr:\n%s", waitBound, stderr.String())
	}
	return ""
}

// PsLeft parses the output of `ps -eo pid=,stat=,args=` and returns the
// lines of processes that hold marker in their command line and are not
// zombies (a zombie runs nothing; its parent or init reaps it in its own
// time).
func PsLeft(out []byte, marker string) []string {
	var left []string
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.Contains(line, marker) || strings.HasPrefix(f[1], "Z") {
			continue
		}
		left = append(left, strings.TrimSpace(line))
	}
	return left
}

// LocalLeft is Backend.Left for backends whose processes run on this
// host.
func LocalLeft(t *testing.T, marker string) []string {
	t.Helper()
	out, err := exec.Command("ps", "-eo", "pid=,stat=,args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	return PsLeft(out, marker)
}
