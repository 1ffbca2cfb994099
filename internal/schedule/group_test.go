package schedule

import (
	"strings"
	"testing"
)

// A job's group is a name like a job's; it is kept, and a bad one is an
// error at its place.
func TestGroup(t *testing.T) {
	s, err := LoadBytes(testOpt, "s.yaml", []byte("jobs:\n  a:\n    group: prices\n    command: [x]\n"))
	if err != nil || s.ByName["a"].Group != "prices" {
		t.Fatalf("group = %q (%v)", s.ByName["a"].Group, err)
	}
	_, err = LoadBytes(testOpt, "s.yaml", []byte("jobs:\n  a:\n    group: Prices/EOD\n    command: [x]\n"))
	if err == nil || !strings.Contains(err.Error(), `s.yaml:3:12: job "a": invalid group name "Prices/EOD"`) {
		t.Errorf("bad group: %v", err)
	}
}
