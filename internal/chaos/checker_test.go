//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The checks are only as good as these pieces: they get tests of their
// own, which run in a moment before TestChaos (-run TestChaos matches
// them too).

func TestChaosOverLimit(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 0) }
	tests := []struct {
		name  string
		spans []span
		limit int
		want  []string // run ids of each over-limit set
	}{
		{name: "touching spans do not overlap", limit: 1,
			spans: []span{{run: 1, units: 1, from: at(0), to: at(5)}, {run: 2, units: 1, from: at(5), to: at(9)}}},
		{name: "overlap over the limit", limit: 1,
			spans: []span{{run: 1, units: 1, from: at(0), to: at(5)}, {run: 2, units: 1, from: at(4), to: at(9)}},
			want:  []string{"1,2"}},
		{name: "units count, not spans", limit: 2,
			spans: []span{{run: 1, units: 1, from: at(0), to: at(5)}, {run: 2, units: 1, from: at(1), to: at(6)}, {run: 3, units: 2, from: at(7), to: at(8)}}},
		{name: "a wide request over a narrow one", limit: 2,
			spans: []span{{run: 1, units: 1, from: at(0), to: at(5)}, {run: 3, units: 2, from: at(4), to: at(8)}},
			want:  []string{"1,3"}},
		{name: "a span of no length ends", limit: 1,
			spans: []span{{run: 1, units: 1, from: at(2), to: at(2)}, {run: 2, units: 1, from: at(3), to: at(4)}, {run: 3, units: 1, from: at(5), to: at(6)}}},
		{name: "each distinct set once", limit: 1,
			spans: []span{{run: 1, units: 1, from: at(0), to: at(10)}, {run: 2, units: 1, from: at(1), to: at(2)}, {run: 3, units: 1, from: at(3), to: at(4)}},
			want:  []string{"1,2", "1,3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, set := range overLimit(tt.spans, tt.limit) {
				var ids []string
				for _, s := range set {
					ids = append(ids, itoa(s.run))
				}
				got = append(got, strings.Join(ids, ","))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("overLimit = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChaosIdleTimes(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_700_000_000+int64(s), 0) }
	show := func(ivs []interval) string {
		var out []string
		for _, iv := range ivs {
			out = append(out, fmt.Sprintf("%d-%d", iv.from.Unix()-1_700_000_000, iv.to.Unix()-1_700_000_000))
		}
		return strings.Join(out, " ")
	}
	holds := []span{{from: at(2), to: at(4)}, {from: at(3), to: at(6)}, {from: at(6), to: at(8)}, {from: at(10), to: at(12)}}
	idle := idleTimes(holds, at(15))
	if got := show(idle); got != "8-10 12-15" {
		t.Errorf("idleTimes = %q, want %q (touching holds leave no gap; idle runs to the end)", got, "8-10 12-15")
	}
	if got := show(intersect(interval{at(9), at(14)}, idle)); got != "9-10 12-14" {
		t.Errorf("intersect = %q, want %q", got, "9-10 12-14")
	}
	if got := show(subtract([]interval{{at(0), at(10)}}, []interval{{at(2), at(3)}, {at(5), at(12)}})); got != "0-2 3-5" {
		t.Errorf("subtract = %q, want %q", got, "0-2 3-5")
	}
}

func TestChaosExpectedFires(t *testing.T) {
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		trig     timeTrigger
		from, to time.Time
		want     []string
	}{
		{name: "every 5s, both ends inclusive", trig: timeTrigger{step: 5 * time.Second},
			from: base.Add(5 * time.Second), to: base.Add(15 * time.Second), want: []string{"12:00:05", "12:00:10", "12:00:15"}},
		{name: "with a phase", trig: timeTrigger{step: 7 * time.Second, phase: 2 * time.Second},
			from: base, to: base.Add(20 * time.Second), want: []string{"12:00:03", "12:00:10", "12:00:17"}},
		{name: "minutely", trig: timeTrigger{step: time.Minute},
			from: base.Add(time.Second), to: base.Add(130 * time.Second), want: []string{"12:01:00", "12:02:00"}},
		{name: "empty window", trig: timeTrigger{step: 10 * time.Second},
			from: base.Add(time.Second), to: base.Add(9 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range tt.trig.expectedFires(tt.from, tt.to) {
				got = append(got, f.UTC().Format("15:04:05"))
				if !tt.trig.onGrid(f) {
					t.Errorf("%s is not on its own grid", f)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("expectedFires = %v, want %v", got, tt.want)
			}
		})
	}
	if (&timeTrigger{step: 5 * time.Second}).onGrid(base.Add(6 * time.Second)) {
		t.Error("12:00:06 is on the grid of every 5s")
	}
}

func TestChaosHistory(t *testing.T) {
	ns := func(ms int) int64 {
		return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond).UnixNano()
	}
	lines := []string{
		// Run 1 ended cleanly: its ticker's last line and the top's end.
		fmt.Sprintf("S 1 1 100 100 %d job-a shell", ns(0)),
		fmt.Sprintf("T 1 1 100 101 %d", ns(10)),
		fmt.Sprintf("D 1 1 100 101 %d 0", ns(500)),
		fmt.Sprintf("E 1 1 100 100 %d 0", ns(510)),
		// Run 2 was SIGKILLed: no last lines.
		fmt.Sprintf("S 2 1 200 200 %d job-b setsid", ns(0)),
		fmt.Sprintf("T 2 1 200 201 %d", ns(300)),
		// Run 3 was started twice.
		fmt.Sprintf("S 3 1 300 300 %d job-c direct", ns(0)),
		fmt.Sprintf("S 3 1 400 400 %d job-c direct", ns(50)),
		// The top got TERM but its ticker outside the group went on.
		fmt.Sprintf("S 4 1 500 500 %d job-d setsid", ns(0)),
		fmt.Sprintf("E 4 1 500 500 %d TERM", ns(100)),
		fmt.Sprintf("T 4 1 500 501 %d", ns(900)),
		fmt.Sprintf("D 4 1 500 501 %d 0", ns(1000)),
		"garbage",
	}
	path := filepath.Join(t.TempDir(), "history")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := readHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.bad) != 1 {
		t.Errorf("bad lines = %q, want the one garbage line", h.bad)
	}
	if n := len(h.byRun[3]); n != 2 {
		t.Errorf("run 3 has %d executions, want 2", n)
	}
	tick := 100 * time.Millisecond
	for _, tt := range []struct {
		run               int64
		clean             bool
		certain, possible int // ms
	}{
		{run: 1, clean: true, certain: 510, possible: 510},
		{run: 2, clean: false, certain: 300, possible: 400},
		{run: 4, clean: false, certain: 1000, possible: 1000},
	} {
		x := h.byRun[tt.run][0]
		c, p := x.aliveUntil(tick)
		if x.endedCleanly() != tt.clean || c.UnixNano() != ns(tt.certain) || p.UnixNano() != ns(tt.possible) {
			t.Errorf("run %d: clean %v, alive until %s / %s; want %v, +%dms / +%dms",
				tt.run, x.endedCleanly(), clock(c), clock(p), tt.clean, tt.certain, tt.possible)
		}
	}
}

func TestChaosPlanFaults(t *testing.T) {
	lease := 6 * time.Second
	bound := lease + lease/3 + 2*time.Second
	d := 105 * time.Second
	a := planFaults(rand.New(rand.NewPCG(7, 7)), d, lease, bound, schedulers)
	b := planFaults(rand.New(rand.NewPCG(7, 7)), d, lease, bound, schedulers)
	if fmt.Sprint(kinds(a)) != fmt.Sprint(kinds(b)) {
		t.Fatalf("the same seed planned %v and %v", kinds(a), kinds(b))
	}
	seen := map[string]bool{}
	for i, f := range a {
		seen[f.kind] = true
		if f.offset+f.hold > d {
			t.Errorf("fault %d (%s) ends at %s, after %s", i, f.kind, f.offset+f.hold, d)
		}
		if i > 0 && f.offset < a[i-1].offset+a[i-1].hold {
			t.Errorf("fault %d (%s) starts before fault %d ends", i, f.kind, i-1)
		}
		if (f.kind == faultKillSlow || f.kind == faultStop) && f.hold <= bound {
			t.Errorf("fault %d (%s) holds %s, not past the bound %s", i, f.kind, f.hold, bound)
		}
		if f.kind == faultDBStop && f.hold <= lease {
			t.Errorf("fault %d (%s) holds %s, not past the lease", i, f.kind, f.hold)
		}
	}
	for _, k := range faultKinds {
		if !seen[k] {
			t.Errorf("no %s in the short form's plan %v", k, kinds(a))
		}
	}
}

func kinds(fs []*fault) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.kind)
	}
	return out
}
