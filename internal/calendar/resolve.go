package calendar

import (
	"time"
)

// Kind says how many instants a wall time names in a zone.
type Kind uint8

// Kinds of wall times.
const (
	Normal  Kind = iota // exactly one instant
	Gap                 // none: the clocks jumped over it (spring forward)
	Overlap             // two: the clocks showed it twice (fall back)
)

func (k Kind) String() string {
	switch k {
	case Normal:
		return "normal"
	case Gap:
		return "gap"
	case Overlap:
		return "overlap"
	}
	return "unknown"
}

// GapPolicy says what a wall time in a gap resolves to.
type GapPolicy uint8

// Gap policies; the zero value is the default.
const (
	// GapShift reads the wall time with the UTC offset in force just before
	// the gap, so it lands gap-length later (02:30 → 03:30 EDT): a daily
	// job never silently misses a day. Equals CPython zoneinfo fold=0.
	GapShift GapPolicy = iota
	// GapSkip yields no instant (systemd, robfig, Temporal).
	GapSkip
)

// OverlapPolicy says what a wall time in an overlap resolves to.
type OverlapPolicy uint8

// Overlap policies; the zero value is the default.
const (
	// OverlapFirst takes the earlier instant, so a nominal time fires once.
	OverlapFirst OverlapPolicy = iota
	// OverlapBoth takes both instants (robfig, Temporal).
	OverlapBoth
)

// DSTPolicy is how wall times in DST gaps and overlaps become instants
// (docs/triggers.md#dst). The zero value is Talon's default: shift, first.
type DSTPolicy struct {
	Gap     GapPolicy
	Overlap OverlapPolicy
}

// Resolution is what a wall time means in a zone, following PEP 495.
type Resolution struct {
	Kind Kind
	// Fold0 is the default instant: the only one (Normal), the earlier one
	// (Overlap), or the wall time read with the offset in force before the
	// gap (Gap, which puts it after the transition).
	Fold0 time.Time
	// Fold1 is the later instant of an Overlap; for a Gap it is the wall time
	// read with the offset in force after the gap (which puts it before the
	// transition); for Normal it equals Fold0.
	Fold1 time.Time
	// Transition is the instant the clocks changed, for Gap and Overlap.
	Transition time.Time
}

// Instants returns the instants p selects from r, in increasing order:
// n is 0, 1 or 2 and a, b are valid up to n. It does not allocate.
func (r Resolution) Instants(p DSTPolicy) (a, b time.Time, n int) {
	switch r.Kind {
	case Gap:
		if p.Gap == GapSkip {
			return time.Time{}, time.Time{}, 0
		}
		return r.Fold0, time.Time{}, 1
	case Overlap:
		if p.Overlap == OverlapBoth {
			return r.Fold0, r.Fold1, 2
		}
		return r.Fold0, time.Time{}, 1
	}
	return r.Fold0, time.Time{}, 1
}

// Start returns the first instant at or after which the clocks show w or a
// later wall time: Fold0 for Normal and Overlap, the transition for a Gap.
// Period bounds use it, so a period whose first wall time was skipped
// starts when the clocks jumped, and periods still tile time.
func (r Resolution) Start() time.Time {
	if r.Kind == Gap {
		return r.Transition
	}
	return r.Fold0
}

// maxOffset bounds any UTC offset in tzdata (real ones are within -12h and
// +14h; local mean times before 1900 reach about ±15h).
const maxOffset = 16 * 3600

// Resolve returns the instants that wall time w names in loc (nil: UTC).
// It never uses time.Date, whose gap and overlap choices differ by zone
// (oracle/README.md, surprise 4): it walks the zone's offset periods that
// could hold w and keeps the instants whose own reading is w.
func Resolve(w Wall, loc *time.Location) Resolution {
	if loc == nil {
		loc = time.UTC
	}
	return resolveNaive(w.naive(), loc)
}

// ResolveUnix is Resolve for a wall time given as seconds since the Unix
// epoch read as if the wall time were UTC. The trigger package uses it on
// its hot path, where it already has that number.
func ResolveUnix(naive int64, loc *time.Location) Resolution {
	if loc == nil {
		loc = time.UTC
	}
	return resolveNaive(naive, loc)
}

func resolveNaive(naive int64, loc *time.Location) Resolution {
	var (
		cand    [2]int64
		ncand   int
		prevOff int64
		havePrv bool
		gap     bool
		gapT    int64
		gapBef  int64
		gapAft  int64
	)
	// Every instant u showing w satisfies u = naive - offset(u), so u lies in
	// [naive-maxOffset, naive+maxOffset]. Visit the zone periods covering
	// that window in order; usually one or two.
	u := naive - maxOffset
	end := naive + maxOffset
	for i := 0; i < 8; i++ {
		t := time.Unix(u, 0).In(loc)
		_, o := t.Zone()
		off := int64(o)
		ps, pe := ZoneBounds(t)
		if havePrv && !gap {
			// A gap lies at this period's start when w read with the old
			// offset falls after it and w read with the new one before it.
			T := ps.Unix()
			if naive-prevOff >= T && naive-off < T && !ps.IsZero() {
				gap, gapT, gapBef, gapAft = true, T, prevOff, off
			}
		}
		c := naive - off
		if (ps.IsZero() || c >= ps.Unix()) && (pe.IsZero() || c < pe.Unix()) && ncand < 2 {
			cand[ncand] = c
			ncand++
		}
		if pe.IsZero() || pe.Unix() > end {
			break
		}
		prevOff, havePrv = off, true
		u = pe.Unix()
	}
	switch {
	case ncand == 1:
		t := time.Unix(cand[0], 0).In(loc)
		return Resolution{Kind: Normal, Fold0: t, Fold1: t}
	case ncand == 2:
		a, b := cand[0], cand[1]
		if b < a {
			a, b = b, a
		}
		// The clocks went back at the end of the period holding a.
		_, tr := ZoneBounds(time.Unix(a, 0).In(loc))
		return Resolution{Kind: Overlap, Fold0: time.Unix(a, 0).In(loc), Fold1: time.Unix(b, 0).In(loc), Transition: tr.In(loc)}
	case gap:
		return Resolution{
			Kind:       Gap,
			Fold0:      time.Unix(naive-gapBef, 0).In(loc),
			Fold1:      time.Unix(naive-gapAft, 0).In(loc),
			Transition: time.Unix(gapT, 0).In(loc),
		}
	}
	// Unreachable with sane tzdata; fall back to UTC reading rather than
	// panic, so bad zone data never takes the scheduler down.
	t := time.Unix(naive, 0).In(loc)
	return Resolution{Kind: Normal, Fold0: t, Fold1: t}
}

// ZoneBounds is t.ZoneBounds corrected for a quirk of Go's time package
// (seen in Go 1.26): for years that a zone's tzdata describes by its rule
// string (after the last listed transition, e.g. 2040 in New York), the
// end of a leap year's last period comes out one day early, at Dec 31
// 00:00 UTC, so instants on that day lie after their own period's end.
// The period then really runs to where the next reported one starts.
func ZoneBounds(t time.Time) (start, end time.Time) {
	start, end = t.ZoneBounds()
	if end.IsZero() || end.After(t) {
		return start, end
	}
	next, _ := end.Add(24 * time.Hour).ZoneBounds()
	if next.After(t) {
		return start, next
	}
	return start, t.Add(time.Second) // keep start ≤ t < end whatever tzdata says
}
