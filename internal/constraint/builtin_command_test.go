//go:build unix

package constraint_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

func TestCommand(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name       string
		value      any
		wantAction talon.Action
		wantReason string // prefix
	}{
		{name: "exit 0 passes", value: []any{"sh", "-c", "echo data is there; exit 0"},
			wantAction: talon.ActionPass, wantReason: "data is there"},
		{name: "exit 0 silent", value: []any{"true"},
			wantAction: talon.ActionPass, wantReason: "exit status 0"},
		{name: "exit 75 blocks", value: []any{"sh", "-c", "echo reason; exit 75"},
			wantAction: talon.ActionBlock, wantReason: "reason"},
		{name: "exit 76 cancels", value: []any{"sh", "-c", "echo  not needed today  ; echo second line; exit 76"},
			wantAction: talon.ActionCancel, wantReason: "not needed today"},
		{name: "other exit fails", value: []any{"sh", "-c", "exit 3"},
			wantAction: talon.ActionFail, wantReason: "exit status 3"},
		{name: "other exit fails with stderr", value: []any{"sh", "-c", "echo no such bucket >&2; exit 1"},
			wantAction: talon.ActionFail, wantReason: "exit status 1: no such bucket"},
		{name: "blank lines skipped", value: []any{"sh", "-c", "echo; echo '  '; echo late line; exit 75"},
			wantAction: talon.ActionBlock, wantReason: "late line"},
		{name: "reason capped", value: []any{"sh", "-c", "echo " + long + "; exit 75"},
			wantAction: talon.ActionBlock, wantReason: strings.Repeat("x", 199) + "…"},
		{name: "env has run", value: []any{"sh", "-c", `echo "$TALON_JOB $TALON_PERIOD $TALON_RUN_ID"`},
			wantAction: talon.ActionPass, wantReason: "load daily/2026-11-26 7"},
		{name: "argv not a shell", value: []any{"echo", "$(rm -rf /)", "a b"},
			wantAction: talon.ActionPass, wantReason: "$(rm -rf /) a b"},
		{name: "missing program fails", value: []any{"/no/such/sensor"},
			wantAction: talon.ActionFail, wantReason: "start /no/such/sensor: fork/exec /no/such/sensor: no such file or directory"},
		{name: "killed by signal fails", value: []any{"sh", "-c", "kill -9 $$"},
			wantAction: talon.ActionFail, wantReason: "signal: killed"},
		{name: "timeout fails", value: map[string]any{"argv": []any{"sleep", 30}, "timeout": "1s"},
			wantAction: talon.ActionFail, wantReason: "sleep timed out after 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, "command", tt.value)
			in := dailyInput(time.Now(), "2026-11-26", time.UTC, fakeLookup{})
			got := c.Check(t.Context(), in)
			if got.Action != tt.wantAction || !strings.HasPrefix(got.Reason, tt.wantReason) {
				t.Errorf("Check = %s %q, want %s %q", got.Action, got.Reason, tt.wantAction, tt.wantReason)
			}
			if len([]rune(got.Reason)) > 250 {
				t.Errorf("reason has %d runes, want it capped", len([]rune(got.Reason)))
			}
		})
	}
}

// TestCommandKillsGroup checks that a sensor's children die with it when
// the check ends early. The child's pid comes back through a FIFO, so the
// test knows the child exists before it ends the check.
func TestCommandKillsGroup(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	c := mustCompile(t, "command", []any{"sh", "-c", `sleep 100 & echo $! > "$0"; wait`, fifo})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	answers := make(chan constraint.Answer, 1)
	go func() {
		answers <- c.Check(ctx, dailyInput(time.Now(), "2026-11-26", time.UTC, fakeLookup{}))
	}()
	pids := make(chan string, 1)
	go func() {
		b, err := os.ReadFile(fifo) // blocks until the sensor writes
		if err != nil {
			b = []byte(err.Error())
		}
		pids <- string(b)
	}()
	var line string
	select {
	case line = <-pids:
	case <-time.After(20 * time.Second):
		t.Fatal("sensor did not report its child")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("parse child pid %q: %v", line, err)
	}
	cancel()
	select {
	case got := <-answers:
		if got.Action != talon.ActionBlock {
			t.Errorf("Check = %s %q, want block", got.Action, got.Reason)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Check did not return")
	}
	waitGone(t, pid)
}

// TestCommandInterrupted: a stopping engine leaves the run blocked rather
// than failing it.
func TestCommandInterrupted(t *testing.T) {
	c := mustCompile(t, "command", []any{"sleep", 30})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got := c.Check(ctx, dailyInput(time.Now(), "2026-11-26", time.UTC, fakeLookup{}))
	if got.Action != talon.ActionBlock || !strings.Contains(got.Reason, "interrupted") {
		t.Errorf("Check = %s %q, want block …interrupted…", got.Action, got.Reason)
	}
}

// waitGone waits, boundedly, until pid no longer exists. The process is
// not our child, so there is nothing to wait on but /proc; a zombie of an
// orphan counts as gone, as init reaps it in its own time.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if isZombie(pid) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
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
