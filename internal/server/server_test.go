package server

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A second lock on one SQLite file is refused, in this process too (two
// embedded schedulers), until the first is released; other stores take
// no lock.
func TestLockState(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	state := "sqlite:" + filepath.Join(t.TempDir(), "talon.db")
	release, err := LockState(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockState(state); err == nil || !strings.Contains(err.Error(), "is in use by another Talon scheduler (pid ") {
		t.Errorf("second lock = %v, want in use", err)
	}
	release()
	again, err := LockState(state)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
	for _, s := range []string{"postgres://u@h/db", "sqlite:"} {
		if r, err := LockState(s); err != nil {
			t.Errorf("LockState(%q) = %v", s, err)
		} else {
			r()
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://talon:secret@db/talon": "postgres://talon:xxxxx@db/talon",
		"postgres://talon@db/talon":        "postgres://talon@db/talon",
		"sqlite:talon.db":                  "sqlite:talon.db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
