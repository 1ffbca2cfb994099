//go:build chaos

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// maxEvidence bounds the violations printed per check; the rest are
// counted.
const maxEvidence = 15

func (h *harness) printReport(seed uint64, lease time.Duration, faults []*fault, runs map[int64]*runRow, hist *historyData, results []*checkResult) {
	w := h.out
	fmt.Fprintf(w, "\n=== chaos report: seed %d ===\n", seed)
	fmt.Fprintf(w, "lease %s; detection bound %s; tick %s; %d schedulers on PostgreSQL 127.0.0.1:%d\n",
		lease, lease+lease/3+*flagSlack, *flagTick, len(h.scheds), h.pg.port)

	count := map[string]int{}
	for _, f := range faults {
		if !f.at.IsZero() {
			count[f.kind]++
		}
	}
	var fs []string
	for _, k := range faultKinds {
		fs = append(fs, fmt.Sprintf("%d %s", count[k], k))
	}
	fmt.Fprintf(w, "faults: %d (%s)\n", len(faults), strings.Join(fs, ", "))

	states := map[string]int{}
	for _, r := range runs {
		states[r.state]++
	}
	var ss []string
	for s, n := range states {
		ss = append(ss, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(ss)
	procs := 0
	for _, s := range h.scheds {
		procs += len(s.all())
	}
	fmt.Fprintf(w, "runs: %d (%s); executions: %d; history lines: %d; scheduler processes: %d\n",
		len(runs), strings.Join(ss, ", "), len(hist.execs), hist.lines, procs)

	passed, failed, uncertain := 0, 0, 0
	for i, res := range results {
		verdict := "PASS"
		if !res.pass() {
			verdict = "FAIL"
			failed++
		} else {
			passed++
		}
		uncertain += res.uncertain
		fmt.Fprintf(w, "%d %s %s: %s", i+1, verdict, res.name, res.figures)
		if res.uncertain > 0 {
			fmt.Fprintf(w, "; %d uncertain (within a tick of the evidence)", res.uncertain)
		}
		fmt.Fprintln(w)
		for j, v := range res.violations {
			if j == maxEvidence {
				fmt.Fprintf(w, "    … %d more\n", len(res.violations)-maxEvidence)
				break
			}
			fmt.Fprintf(w, "    - %s\n", v)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed (%d uncertain)\n", passed, failed, uncertain)
}
