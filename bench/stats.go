package main

import (
	"slices"
	"time"
)

// percentile is the p-th percentile of ds by nearest rank (p 100: the
// maximum), 0 for none; the same rule as the main module's benchmarks.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// diffs returns the gaps between consecutive times.
func diffs(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}
