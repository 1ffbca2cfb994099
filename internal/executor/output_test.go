package executor_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// runningRun opens a store with one running run.
func runningRun(t *testing.T) (store.Store, talon.Run) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "talon.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	res, err := st.CreateRuns(t.Context(), []store.CreateRun{{Job: "a", Period: "daily/2026-11-26", Trigger: "api"}})
	if err != nil {
		t.Fatal(err)
	}
	return st, res[0].Run
}

// Output masks a secret before anything reaches the file, the log store
// or OnLine, also when the secret comes in pieces; the file and the
// store hold the same bytes.
func TestOutputMasksEverywhere(t *testing.T) {
	t.Parallel()
	st, run := runningRun(t)
	path := filepath.Join(t.TempDir(), "a", "1.log")
	var mu sync.Mutex
	var lines []string
	s := executor.Spec{
		Run: run, Job: &talon.Job{Name: "a"}, LogPath: path, Logs: st, Secrets: []string{"hunter2"},
		OnLine: func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() },
	}
	out, err := executor.NewOutput(s, executor.OutputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, piece := range []string{"pw=hun", "ter2\n::talon progress 5", "0% hunter2\nlast hunt"} {
		out.Write([]byte(piece))
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	want := "pw=***\n::talon progress 50% ***\nlast hunt"
	file, err := os.ReadFile(path)
	if err != nil || string(file) != want {
		t.Errorf("file = %q, %v; want %q", file, err, want)
	}
	stored, err := st.ReadLog(t.Context(), run.ID, 0, 1000)
	if err != nil || string(stored) != want {
		t.Errorf("stored = %q, %v; want %q", stored, err, want)
	}
	if wantLines := []string{"pw=***", "::talon progress 50% ***", "last hunt"}; !slices.Equal(lines, wantLines) {
		t.Errorf("lines = %q, want %q", lines, wantLines)
	}
	out.Write([]byte("after close hunter2"))
	if stored, _ := st.ReadLog(t.Context(), run.ID, 0, 1000); strings.Contains(string(stored), "after") {
		t.Errorf("a write after Close was stored: %q", stored)
	}
}

// An Output with nowhere to write is nil, and takes writes.
func TestOutputNowhere(t *testing.T) {
	out, err := executor.NewOutput(executor.Spec{Job: &talon.Job{Name: "a"}}, executor.OutputOptions{})
	if err != nil || out != nil {
		t.Fatalf("NewOutput without a file, store or OnLine = %v, %v; want nil", out, err)
	}
	if n, err := out.Write([]byte("x")); n != 1 || err != nil {
		t.Fatalf("nil Output Write = %d, %v", n, err)
	}
	if err := out.Close(); err != nil || out.Err() != nil {
		t.Fatalf("nil Output Close = %v", err)
	}
}
