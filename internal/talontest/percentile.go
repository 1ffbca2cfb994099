package talontest

import (
	"slices"
	"time"
)

// Percentile is the p-th percentile of ds by nearest rank (p 100: the
// maximum), 0 for none: what the benchmarks report.
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
