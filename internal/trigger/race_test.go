//go:build race

package trigger

// raceEnabled: the race detector slows Next about tenfold, so the
// all-zones property test samples zones under it.
const raceEnabled = true
