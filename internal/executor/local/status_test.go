package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
)

// TestStatusOutcome: the outcome a status file gives, including a
// command that exited by itself just as its supervisor was told to kill
// it (the scheduler died 4 ms before the command exited 0): its exit
// status stands, so a success is never recorded as a failure.
func TestStatusOutcome(t *testing.T) {
	tests := []struct {
		name   string
		st     runStatus
		ok     bool
		reason string
	}{
		{name: "exited 0", st: runStatus{Exited: true}, ok: true, reason: "exit status 0"},
		{name: "exited 3", st: runStatus{Exited: true, ExitCode: 3}, reason: "exit status 3"},
		{name: "exit raced with the scheduler's death", st: runStatus{Exited: true, Killed: killedSchedulerDied}, ok: true, reason: "exit status 0"},
		{name: "exit raced with the lease", st: runStatus{Exited: true, ExitCode: 2, Killed: killedLease}, reason: "exit status 2"},
		{name: "killed when the scheduler died", st: runStatus{Signal: 9, Killed: killedSchedulerDied}, reason: "lost: its scheduler died; its supervisor killed it"},
		{name: "killed when the lease expired", st: runStatus{Signal: 9, Killed: killedLease}, reason: "lost: its scheduler's lease expired; its supervisor killed it"},
		{name: "cancelled, exited on SIGTERM", st: runStatus{Exited: true, Killed: killedCancel, Cause: "cancelled by bob"}, reason: "cancelled by bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.st.outcome()
			if o.Succeeded != tt.ok || o.Reason != tt.reason {
				t.Errorf("outcome = %v %q, want %v %q", o.Succeeded, o.Reason, tt.ok, tt.reason)
			}
		})
	}
}

// TestLastStatus: a status stream is read from its end, across reads,
// for the last record of an execution; a record half written at the end
// is not taken, and one written after a record cut short (a full disk)
// on the same line still is.
func TestLastStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), streamName())
	nonce := func(i int) string { return fmt.Sprintf("%032x", i) }
	var b strings.Builder
	started := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rec := func(st runStatus) {
		j, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	// Run 1 starts, 3000 others start and end (more than two reads'
	// worth), then run 1 ends.
	rec(runStatus{Nonce: nonce(1), Pid: 100, Run: 1, Started: started})
	for i := 2; i < 3002; i++ {
		rec(runStatus{Nonce: nonce(i), Pid: 100 + i, Run: int64(i), Started: started})
		rec(runStatus{Nonce: nonce(i), Pid: 100 + i, Run: int64(i), Started: started, Exited: true, ExitCode: i % 7, Ended: started})
	}
	rec(runStatus{Nonce: nonce(1), Pid: 100, Run: 1, Started: started, Exited: true, ExitCode: 5, Ended: started})
	// A write of run 2 cut short, then its last record on the same line.
	b.WriteString(`{"nonce":"` + nonce(2) + `","pid":102,"ru`)
	rec(runStatus{Nonce: nonce(2), Pid: 102, Run: 2, Started: started, Exited: true, ExitCode: 9, Ended: started})
	// A record of run 3 being written.
	b.WriteString(`{"nonce":"` + nonce(3) + `","pid":103,"run":3,"started":"2026-11-30T12:00:00Z","exited":true,"exit_code":1`)
	if b.Len() < 3*statusChunk {
		t.Fatalf("stream of %d bytes, want several reads", b.Len())
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		nonce int
		code  int
	}{{1, 5}, {2, 9}, {3, 3}, {3001, 3001 % 7}} {
		st, err := readStatus(path, nonce(tt.nonce))
		if err != nil || !st.Exited || st.ExitCode != tt.code {
			t.Errorf("readStatus of execution %d = %+v, %v; want exit code %d", tt.nonce, st, err, tt.code)
		}
	}
	if _, err := readStatus(path, nonce(5000)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readStatus of an execution without a record: %v, want not exist", err)
	}
	st, err := readRunStatus(path, talon.Run{ID: 1, Created: started.Add(-time.Hour)})
	if err != nil || st.Nonce != nonce(1) || st.ExitCode != 5 {
		t.Errorf("readRunStatus of run 1 = %+v, %v; want its last record", st, err)
	}
	if _, err := readRunStatus(path, talon.Run{ID: 1, Created: started.Add(time.Hour)}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readRunStatus of a run 1 created after those records: %v, want not exist", err)
	}
	if _, err := readRunStatus(path, talon.Run{ID: 30}); err != nil {
		t.Errorf("readRunStatus of run 30: %v", err)
	}
	if _, err := readRunStatus(path, talon.Run{ID: 3002}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readRunStatus of a run without records: %v, want not exist", err)
	}
}

// TestStatusJSON: a record is written as encoding/json writes it, with
// every field set or left out, and strings that need escapes.
func TestStatusJSON(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC)
	full := runStatus{}
	// Every field set, so a field added to runStatus and not to
	// appendJSON fails here.
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("x" + strconv.Itoa(i))
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Hour)))
		default:
			t.Fatalf("runStatus.%s: kind %s not covered", v.Type().Field(i).Name, f.Kind())
		}
	}
	for _, st := range []runStatus{
		{},
		full,
		{Nonce: "0123456789abcdef0123456789abcdef", Pid: 4242, Run: 42, Started: at},
		{Nonce: "n", Pid: 1, Started: at.In(time.FixedZone("x", 3600)), Exited: true, ExitCode: -3, Ended: at.Truncate(time.Second)},
		{Nonce: "n", Signal: 9, Killed: killedSchedulerDied, Cause: "cancelled by \"bob\" <b&b>\n\t\x01 é \u2028 \xff", Ended: at},
	} {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON =\n%s\nwant\n%s", got, want)
		}
	}
}
