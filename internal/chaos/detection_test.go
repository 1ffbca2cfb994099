//go:build chaos

package chaos

import (
	"strings"
	"testing"
	"time"
)

// TestChaosDetectionAfterOutage: a scheduler frozen past the detection
// bound of its last heartbeat, whose runs it finished itself after
// SIGCONT, is a violation — unless a database outage that ended after
// that heartbeat (less a lease) moved the deadline past the freeze's
// end: peers judge others only once they have heartbeated for a whole
// lease without a gap, the rule detected runs are held to as well.
func TestChaosDetectionAfterOutage(t *testing.T) {
	base := time.Date(2026, 11, 30, 19, 20, 11, 0, time.UTC)
	lease := 6 * time.Second
	newChecker := func(outages []interval) *checker {
		p := &talonProc{sched: &scheduler{name: "s1"}, n: 6, pid: 6873, instance: "s1-inst"}
		r := &runRow{id: 2081, state: "succeeded", owner: "s1-inst", events: []eventRow{
			{at: base.Add(-3 * time.Second), to: "running"},
			{at: base.Add(14 * time.Second), from: "running", to: "succeeded", reason: "exit status 0"},
		}}
		f := &fault{kind: faultStop, at: base.Add(time.Second), restored: base.Add(13 * time.Second), hold: 12 * time.Second,
			proc: p, instance: "s1-inst", heartbeat: base}
		return &checker{
			runs: map[int64]*runRow{r.id: r}, ids: []int64{r.id}, hist: &historyData{byRun: map[int64][]*execution{}},
			faults: []*fault{f}, procOf: map[string]*talonProc{"s1-inst": p}, procs: []*talonProc{p},
			outages: outages, lease: lease, bound: 10 * time.Second,
		}
	}
	res := newChecker(nil).checkDetection()
	if len(res.violations) != 1 || !strings.Contains(res.violations[0], "neither declared lost nor re-attached") {
		t.Fatalf("frozen 12s past a 10s bound, no outage: violations %q, want one", res.violations)
	}
	// The database was down from before the heartbeat until 3s after it:
	// peers had until 13s after the heartbeat plus the bound.
	res = newChecker([]interval{{from: base.Add(-2 * time.Second), to: base.Add(3 * time.Second)}}).checkDetection()
	if len(res.violations) != 0 {
		t.Fatalf("frozen until within the bound of an outage's end: violations %q, want none", res.violations)
	}
}
