//go:build linux

package local_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/talonhq/talon/internal/executor/local"
)

// testLogger sends the executor's log to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// spec is a run of job "load" with the given argv, logging under dir.
func spec(dir string, argv ...string) executor.Spec {
	return executor.Spec{
		Run:     talon.Run{ID: 42, Job: "load", Period: "daily/2026-11-26"},
		Job:     &talon.Job{Name: "load", Command: argv},
		Env:     []string{"TALON_RUN_ID=42", "TALON_JOB=load", "TALON_PERIOD=daily/2026-11-26"},
		LogPath: filepath.Join(dir, "logs", "load", "42.log"),
	}
}

// wait waits for the outcome, boundedly.
func wait(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	select {
	case o := <-ch:
		return o
	case <-time.After(20 * time.Second):
		t.Fatalf("run %s did not end", p.Handle())
	}
	return executor.Outcome{}
}

func readLog(t *testing.T, s executor.Spec) string {
	t.Helper()
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return string(b)
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name          string
		argv          []string
		wantSucceeded bool
		wantCode      int
		wantReason    string
	}{
		{name: "success", argv: []string{"true"}, wantSucceeded: true, wantCode: 0, wantReason: "exit status 0"},
		{name: "exit 3", argv: []string{"sh", "-c", "exit 3"}, wantCode: 3, wantReason: "exit status 3"},
		{name: "killed", argv: []string{"sh", "-c", "kill -9 $$"}, wantCode: -1, wantReason: "killed by signal 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex := local.New(testLogger(t))
			p, err := ex.Start(t.Context(), spec(t.TempDir(), tt.argv...))
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			o := wait(t, p)
			if o.Succeeded != tt.wantSucceeded || o.ExitCode != tt.wantCode || o.Reason != tt.wantReason {
				t.Errorf("outcome = %+v, want succeeded %v, code %d, reason %q", o, tt.wantSucceeded, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestEnvArgvDirAndLog(t *testing.T) {
	workDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		argv    []string
		env     map[string]talon.EnvValue
		dir     string
		wantLog string
	}{
		{name: "talon and job env",
			argv:    []string{"sh", "-c", `echo "$TALON_JOB $TALON_PERIOD $TALON_RUN_ID $FOO"`},
			env:     map[string]talon.EnvValue{"FOO": {Value: "bar baz"}},
			wantLog: "load daily/2026-11-26 42 bar baz\n"},
		{name: "talon env wins over job env",
			argv:    []string{"sh", "-c", `echo "$TALON_JOB"`},
			env:     map[string]talon.EnvValue{"TALON_JOB": {Value: "spoofed"}},
			wantLog: "load\n"},
		{name: "argv passed literally",
			argv:    []string{"printf", `%s|\n`, "a b", `"quoted" 'single'`, "$(rm -rf /)", "`id`", "*", ""},
			wantLog: "a b|\n\"quoted\" 'single'|\n$(rm -rf /)|\n`id`|\n*|\n|\n"},
		{name: "working directory", argv: []string{"pwd"}, dir: workDir, wantLog: workDir + "\n"},
		{name: "stdout and stderr in order",
			argv:    []string{"sh", "-c", "echo one; echo two >&2; echo three"},
			wantLog: "one\ntwo\nthree\n"},
		{name: "no trailing newline", argv: []string{"printf", "partial"}, wantLog: "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(t.TempDir(), tt.argv...)
			s.Job.Env = tt.env
			s.Job.Dir = tt.dir
			p, err := local.New(testLogger(t)).Start(t.Context(), s)
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if o := wait(t, p); !o.Succeeded {
				t.Fatalf("outcome = %+v, want success", o)
			}
			if got := readLog(t, s); got != tt.wantLog {
				t.Errorf("log = %q, want %q", got, tt.wantLog)
			}
		})
	}
}

func TestLogFile(t *testing.T) {
	s := spec(t.TempDir(), "sh", "-c", "echo attempt")
	ex := local.New(testLogger(t))
	for range 2 {
		p, err := ex.Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		wait(t, p)
	}
	if got, want := readLog(t, s), "attempt\nattempt\n"; got != want {
		t.Errorf("log = %q, want %q (appended)", got, want)
	}
	fi, err := os.Stat(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(s.LogPath))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("log directory mode = %v, want 0700", di.Mode().Perm())
	}
}

// TestLargeOutput: nothing is lost, however much is written and however
// long the lines, and OnLine sees every line.
func TestLargeOutput(t *testing.T) {
	// 20000 short lines, then one line of 200 KB without a newline.
	script := `i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; head -c 204800 /dev/zero | tr '\0' x`
	s := spec(t.TempDir(), "sh", "-c", script)
	var mu sync.Mutex
	var lines []string
	s.OnLine = func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Fatalf("outcome = %+v", o)
	}
	log := readLog(t, s)
	if n := strings.Count(log, "\n"); n != 20000 {
		t.Errorf("log has %d lines, want 20000", n)
	}
	if !strings.HasSuffix(log, "line 19999\n"+strings.Repeat("x", 204800)) {
		t.Errorf("log does not end with the long line")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 20001 {
		t.Fatalf("OnLine got %d lines, want 20001", len(lines))
	}
	if lines[0] != "line 0" || lines[19999] != "line 19999" {
		t.Errorf("OnLine lines = %q … %q", lines[0], lines[19999])
	}
	if l := lines[20000]; len(l) == 0 || strings.Trim(l, "x") != "" {
		t.Errorf("last OnLine line is not the long line (len %d)", len(l))
	}
}

func TestOnLineWithoutLogPath(t *testing.T) {
	s := spec(t.TempDir(), "sh", "-c", "echo '::talon progress 40%'; printf 'crlf\\r\\n'; echo done >&2")
	s.LogPath = ""
	got := make(chan string, 10)
	s.OnLine = func(l string) { got <- l }
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	wait(t, p)
	close(got)
	var lines []string
	for l := range got {
		lines = append(lines, l)
	}
	if want := "::talon progress 40%|crlf|done"; strings.Join(lines, "|") != want {
		t.Errorf("lines = %q, want %q", strings.Join(lines, "|"), want)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		dir  string
		want string
	}{
		{name: "not in PATH", argv: []string{"talon-no-such-program"}, want: `start load: program "talon-no-such-program" not found in PATH`},
		{name: "no such file", argv: []string{"/no/such/program", "x"}, want: "start load: program /no/such/program not found"},
		{name: "no such dir", argv: []string{"true"}, dir: "/no/such/dir", want: "start load: directory /no/such/dir not found"},
		{name: "no command", argv: nil, want: "start: job has no command"},
		{name: "not executable", argv: []string{"/etc/hostname"}, want: "start load: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(t.TempDir(), tt.argv...)
			s.Job.Dir = tt.dir
			p, err := local.New(testLogger(t)).Start(t.Context(), s)
			if err == nil {
				wait(t, p)
				t.Fatalf("Start succeeded, want error %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestHandle(t *testing.T) {
	p, err := local.New(testLogger(t)).Start(t.Context(), spec(t.TempDir(), "sh", "-c", "echo $$"))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	wait(t, p)
	if !strings.HasPrefix(p.Handle(), "pid:") {
		t.Errorf("Handle = %q, want pid:N", p.Handle())
	}
}

// TestCancelKillsGroup: a cancel stops the command and everything it
// started, and the cause is the reason.
func TestCancelKillsGroup(t *testing.T) {
	s := spec(t.TempDir(), "sh", "-c", `sleep 100 & echo "$$ $!"; sleep 100`)
	pids := make(chan string, 1)
	s.OnLine = func(l string) {
		select {
		case pids <- l:
		default:
		}
	}
	p, err := local.New(testLogger(t)).Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	var line string
	select {
	case line = <-pids:
	case <-time.After(10 * time.Second):
		p.Cancel(errors.New("test gave up"))
		t.Fatal("no pids from the command")
	}
	p.Cancel(errors.New("cancelled by alice"))
	o := wait(t, p)
	if o.Succeeded || o.Reason != "cancelled by alice" {
		t.Errorf("outcome = %+v, want failed with reason %q", o, "cancelled by alice")
	}
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("parse pid %q: %v", f, err)
		}
		waitGone(t, pid)
	}
}

// TestCancelEscalates: a command that ignores SIGTERM gets SIGKILL after
// the grace period.
func TestCancelEscalates(t *testing.T) {
	s := spec(t.TempDir(), "sh", "-c", `trap "" TERM; echo ready; sleep 100 & wait`)
	ready := make(chan struct{}, 1)
	s.OnLine = func(string) {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
	ex := local.New(testLogger(t))
	ex.Grace = 100 * time.Millisecond
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("command not ready")
	}
	p.Cancel(errors.New("killed: timeout after 2h"))
	o := wait(t, p)
	if o.Succeeded || o.Reason != "killed: timeout after 2h" || o.ExitCode != -1 {
		t.Errorf("outcome = %+v, want killed with the cause as reason", o)
	}
}

func TestCancelAfterEnd(t *testing.T) {
	p, err := local.New(testLogger(t)).Start(t.Context(), spec(t.TempDir(), "true"))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	wait(t, p)
	p.Cancel(errors.New("too late"))
	if o := p.Wait(); !o.Succeeded || o.Reason != "exit status 0" {
		t.Errorf("outcome = %+v, want the original success", o)
	}
}

func TestRecover(t *testing.T) {
	ex := local.New(testLogger(t))
	tests := []struct {
		name       string
		runEnvID   string // TALON_RUN_ID of the leftover process; "" for none
		handle     func(pid int) string
		wantKilled bool
		wantErr    string
	}{
		{name: "bad handle", handle: func(int) string { return "sge:12" },
			wantErr: `lost: scheduler restarted; handle "sge:12" is not a local pid`},
		{name: "leftover of the run is killed", runEnvID: "42", handle: func(pid int) string { return "pid:" + strconv.Itoa(pid) },
			wantKilled: true, wantErr: "lost: scheduler restarted while pid %d was running; its 1 process was killed"},
		{name: "reused pid is left alone", runEnvID: "7", handle: func(pid int) string { return "pid:" + strconv.Itoa(pid) },
			wantErr: "lost: scheduler restarted while pid %d was running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := 0
			var exited chan error
			if tt.runEnvID != "" {
				cmd := exec.Command("sleep", "100")
				cmd.Env = append(os.Environ(), "TALON_RUN_ID="+tt.runEnvID)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				pid = cmd.Process.Pid
				exited = make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				t.Cleanup(func() { cmd.Process.Kill() })
			}
			_, err := ex.Recover(t.Context(), talon.Run{ID: 42, Job: "load"}, tt.handle(pid))
			if !errors.Is(err, executor.ErrLost) {
				t.Fatalf("Recover error = %v, want ErrLost", err)
			}
			want := tt.wantErr
			if strings.Contains(want, "%d") {
				want = fmt.Sprintf(want, pid)
			}
			if err.Error() != want {
				t.Errorf("Recover error = %q, want %q", err, want)
			}
			if exited == nil {
				return
			}
			if tt.wantKilled {
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					t.Fatal("leftover process still running")
				}
			} else if syscall.Kill(pid, 0) != nil {
				t.Errorf("process %d was killed, want it left alone", pid)
			}
		})
	}
}

// waitGone waits, boundedly, until pid no longer exists. The process is
// not our child, so there is nothing to wait on but /proc; a zombie
// counts as gone, as init reaps it in its own time.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
		select {
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still alive", pid)
		case <-tick.C:
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// TestEnvironmentHasEachKeyOnce: a command gets each variable once, with
// the value that wins (the job's over the scheduler's, the run's over
// the job's), even when the scheduler's environment changed since the
// executor started its first run: execve passes duplicates on, and
// getenv finds the first.
func TestEnvironmentHasEachKeyOnce(t *testing.T) {
	t.Setenv("TALON_TEST_SCHEDULER_VAR", "scheduler")
	ex := local.New(testLogger(t))
	run := func(env map[string]talon.EnvValue) map[string]string {
		t.Helper()
		s := spec(t.TempDir(), "env", "-0")
		s.Job.Env = env
		p, err := ex.Start(t.Context(), s)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if o := wait(t, p); !o.Succeeded {
			t.Fatalf("outcome = %+v", o)
		}
		got := map[string]string{}
		for kv := range strings.SplitSeq(strings.TrimSuffix(readLog(t, s), "\x00"), "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := got[k]; dup {
				t.Errorf("%s appears twice in the command's environment", k)
			}
			got[k] = v
		}
		return got
	}
	tests := []struct {
		name  string
		env   map[string]talon.EnvValue
		after func()
		want  map[string]string
	}{
		{name: "scheduler's and job's", env: map[string]talon.EnvValue{"FOO": {Value: "bar"}},
			want: map[string]string{"TALON_TEST_SCHEDULER_VAR": "scheduler", "FOO": "bar", "TALON_RUN_ID": "42", "PATH": os.Getenv("PATH")}},
		{name: "job's over scheduler's", env: map[string]talon.EnvValue{"TALON_TEST_SCHEDULER_VAR": {Value: "job"}},
			want: map[string]string{"TALON_TEST_SCHEDULER_VAR": "job", "TALON_RUN_ID": "42"}},
		{name: "run's over job's", env: map[string]talon.EnvValue{"TALON_RUN_ID": {Value: "7"}},
			want: map[string]string{"TALON_TEST_SCHEDULER_VAR": "scheduler", "TALON_RUN_ID": "42"}},
		{name: "scheduler's changed since", after: func() { t.Setenv("TALON_TEST_SCHEDULER_VAR", "changed") },
			want: map[string]string{"TALON_TEST_SCHEDULER_VAR": "changed", "TALON_RUN_ID": "42"}},
	}
	for _, tt := range tests {
		if tt.after != nil {
			tt.after()
		}
		got := run(tt.env)
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s=%q, want %q", tt.name, k, got[k], v)
			}
		}
		if len(got["TALON_RUN_NONCE"]) != 32 {
			t.Errorf("%s: TALON_RUN_NONCE=%q, want the execution's nonce", tt.name, got["TALON_RUN_NONCE"])
		}
	}
}
