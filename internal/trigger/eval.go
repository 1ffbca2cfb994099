package trigger

import (
	"math"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// walkDays bounds how far Next looks ahead. TRIGGERS.md §6 asks for about
// ten years; we take 28 because that is the cycle in which every (date,
// weekday) pair of the Gregorian calendar recurs, so a cron spec that Parse
// accepts (it checks that some date matches within one cycle) is always
// found, e.g. Monday the 29th of February (*/28 2 1 quirk: 2016, 2044).
const walkDays = 28*365 + 7

// maxOffset bounds any UTC offset in tzdata, in seconds.
const maxOffset = 16 * 3600

// maxWall is the largest wall second a timeGen may return, plus one.
const maxWall = 2 * 86400

// Next returns the first fire instant strictly after after, in the spec's
// zone, or the zero time if there is none within the walk limit. It is a
// pure function of the spec, tzdata and after.
func (s *Spec) Next(after time.Time) time.Time {
	a := after.Unix() // u > after ⇔ u > a for whole-second u
	best := int64(math.MaxInt64)
	for i := range s.rules {
		if u, ok := s.nextWall(&s.rules[i], a, best); ok && u < best {
			best = u
		}
	}
	for _, g := range s.grids {
		k := floorDiv(a-g.phase, g.every) + 1
		if u := k*g.every + g.phase; u < best {
			best = u
		}
	}
	for _, u := range s.once {
		if u > a && u < best {
			best = u
		}
	}
	if best == math.MaxInt64 {
		return time.Time{}
	}
	return time.Unix(best, 0).In(s.loc)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// zonePeriod is a span [start, end) of instants with one UTC offset;
// unbounded ends are MinInt64/MaxInt64.
type zonePeriod struct {
	start, end int64
	off        int64
}

func (s *Spec) zoneAt(u int64) zonePeriod {
	t := time.Unix(u, 0).In(s.loc)
	_, off := t.Zone()
	st, en := t.ZoneBounds()
	z := zonePeriod{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
	if !st.IsZero() {
		z.start = st.Unix()
	}
	if !en.IsZero() {
		z.end = en.Unix()
	}
	return z
}

// nextWall returns the rule's smallest instant > a, not looking at
// instants ≥ bound (another rule already has one there).
//
// It walks candidate days from the local date of a, minus one (a shifted
// gap time or a window crossing midnight can land on the next date). On
// most days the zone keeps one offset over every instant the day's wall
// times could name, so wall times map to instants monotonically and the
// first one after a is the answer. Only on days near a transition does it
// resolve each wall time (calendar.ResolveUnix) and keep the smallest.
func (s *Spec) nextWall(r *rule, a, bound int64) (int64, bool) {
	z := s.zoneAt(a)
	today := int(floorDiv(a+z.off, 86400))
	limit := today + walkDays
	best, found := bound, false
	for d := r.days.nextDay(today-1, limit); d <= limit; d = r.days.nextDay(d+1, limit) {
		base := int64(d) * 86400
		lo, hi := base-maxOffset, base+maxWall+maxOffset
		if lo < z.start || hi > z.end {
			z = s.zoneAt(lo)
		}
		if lo >= z.start && hi <= z.end {
			// One offset for the whole day: instant = wall − offset.
			if base-z.off > best {
				break
			}
			if w, ok := r.times.next(max(a-base+z.off+1, 0)); ok {
				if u := base + w - z.off; u < best {
					best, found = u, true
				}
			}
			if found && best <= base+86400-z.off {
				// The offset holds into tomorrow, so no later day has an
				// earlier instant (only windows crossing midnight get here
				// without stopping).
				break
			}
			continue
		}
		oMin, oMax := s.offsetRange(lo, hi)
		if base-oMax > best {
			break
		}
		for w, ok := r.times.next(max(a-base+oMin+1, 0)); ok; w, ok = r.times.next(w + 1) {
			naive := base + w
			if naive-oMax > best {
				break
			}
			// Any instant showing this wall time lies in [naive−oMax,
			// naive−oMin]. If one offset holds over that span, it is the
			// only instant; only wall times near the transition itself
			// need the full resolution.
			l, h := naive-oMax, naive-oMin
			if l < z.start || h >= z.end {
				z = s.zoneAt(l)
			}
			if l >= z.start && h < z.end {
				if u := naive - z.off; u > a && u < best {
					best, found = u, true
				}
				continue
			}
			x, y, n := calendar.ResolveUnix(naive, s.loc).Instants(s.dst)
			if n >= 1 {
				if u := x.Unix(); u > a && u < best {
					best, found = u, true
				}
			}
			if n == 2 {
				if u := y.Unix(); u > a && u < best {
					best, found = u, true
				}
			}
		}
	}
	return best, found
}

// offsetRange returns the least and greatest UTC offsets in force during
// [lo, hi).
func (s *Spec) offsetRange(lo, hi int64) (int64, int64) {
	z := s.zoneAt(lo)
	oMin, oMax := z.off, z.off
	for i := 0; i < 16 && z.end < hi; i++ {
		z = s.zoneAt(z.end)
		oMin, oMax = min(oMin, z.off), max(oMax, z.off)
	}
	return oMin, oMax
}
