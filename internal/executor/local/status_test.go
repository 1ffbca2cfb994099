package local

import "testing"

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
