package trigger

import (
	"math"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// walkDays bounds how far Next looks ahead: about ten years would do for
// most specs; we take 28 because that is the cycle in which every (date,
// weekday) pair of the Gregorian calendar recurs, so a spec that Parse
// accepts (it checks that some date matches within one cycle) is always
// found, e.g. Monday the 29th of February (*/28 2 1 quirk: 2016, 2044).
const walkDays = 28*365 + 7

// maxOffset bounds any UTC offset in tzdata, in seconds.
const maxOffset = 16 * 3600

// maxWall is the largest wall second a timeGen may return, plus one.
const maxWall = 2 * 86400

// Fire is one firing of a trigger.
type Fire struct {
	// At is when the run should start: Nominal plus the spec's jitter.
	At time.Time
	// Nominal is the instant the schedule names. Run keys and periods use
	// it, so jitter never moves a run to another period.
	Nominal time.Time
	// Date is the business date D of the fire in the spec's zone: the date
	// the rule selected, before any holiday adjustment, which is the date
	// whose period the run belongs to
	// (docs/triggers.md#which-period-a-fire-belongs-to). For a window
	// crossing midnight it is the window's start date.
	Date calendar.Date
}

// Next returns the first fire instant (Fire.At) strictly after after, in
// the spec's zone, or the zero time if there is none within the walk limit
// or the answer depends on calendar data the spec does not have. Callers
// that must tell these apart (the engine) use NextFire.
func (s *Spec) Next(after time.Time) time.Time {
	f, err := s.NextFire(after)
	if err != nil {
		return time.Time{}
	}
	return f.At
}

// NextFire returns the fire with the smallest At strictly after after.
// It returns the zero Fire and a nil error when the spec never fires
// again, and an error wrapping calendar.ErrNotCovered when the answer
// needs a date past a calendar's Through: operators must extend the
// calendar, and the engine should surface the error rather than treat it
// as "no more fires". It is a pure function of the spec, its calendars,
// tzdata and after, and allocates nothing unless it returns an error.
func (s *Spec) NextFire(after time.Time) (Fire, error) {
	a := after.Unix() // u > after ⇔ u > a for whole-second u
	if s.jitter == 0 {
		u, d, ok, err := s.nextNominal(a)
		if err != nil || !ok {
			return Fire{}, err
		}
		t := time.Unix(u, 0).In(s.loc)
		return Fire{At: t, Nominal: t, Date: calendar.DateOfDays(d)}, nil
	}
	// A nominal instant whose jittered instant is after a is itself after
	// a − jitter; walk them in order (jitter keeps that order, as it stays
	// before the next nominal instant).
	x := a - s.jitter
	for {
		u, d, ok, err := s.nextNominal(x)
		if err != nil || !ok {
			return Fire{}, err
		}
		if j := s.jitterAt(u); u+j > a {
			return Fire{At: time.Unix(u+j, 0).In(s.loc), Nominal: time.Unix(u, 0).In(s.loc), Date: calendar.DateOfDays(d)}, nil
		}
		x = u
	}
}

// jitterAt returns the delay of the fire at nominal instant u: a hash of
// the trigger ID and u, modulo the jitter, capped to stay before the next
// nominal instant (docs/triggers.md#bounds-and-jitter). If the next
// nominal instant cannot be computed (calendar coverage), the delay is not
// capped.
func (s *Spec) jitterAt(u int64) int64 {
	// FNV-1a over the ID and the instant: deterministic across processes
	// and releases, unlike maphash.
	h := uint64(14695981039346656037)
	for i := 0; i < len(s.id); i++ {
		h = (h ^ uint64(s.id[i])) * 1099511628211
	}
	for i := 0; i < 8; i++ {
		h = (h ^ uint64(byte(u>>(8*i)))) * 1099511628211
	}
	j := int64(h % uint64(s.jitter))
	if j == 0 {
		return 0
	}
	if nx, _, ok, err := s.nextNominal(u); err == nil && ok && u+j >= nx {
		j = nx - u - 1
	}
	return j
}

// nextNominal returns the smallest nominal instant > a within the spec's
// bounds, with its business day number.
func (s *Spec) nextNominal(a int64) (u int64, biz int, ok bool, err error) {
	if s.hasStart && a < s.start-1 {
		a = s.start - 1
	}
	best := int64(math.MaxInt64)
	if s.hasEnd && s.end < math.MaxInt64 {
		best = s.end + 1 // nothing after the end matters, nor can fail
	}
	exact := false
	var firstErr error
	errAt := int64(math.MaxInt64)
	for i := range s.rules {
		v, d, ex, found, errDay, err := s.nextWall(&s.rules[i], a, best)
		if err != nil {
			// Keep going: another rule may fire before the day this one
			// could not look at, and then the answer is still known.
			// The first instant of the day the rule could not decide.
			n := int64(errDay) * 86400
			at := n - max(s.zoneAt(n-86400).off, s.zoneAt(n+86400).off)
			if s.adjust != adjNone {
				at -= 40 * 86400 // a later date may be carried back
			}
			if at < errAt {
				firstErr, errAt = err, at
			}
		}
		if !found {
			continue
		}
		if v < best || v == best && !exact && ex {
			best, biz, exact = v, d, ex
		}
	}
	for i := range s.grids {
		v, err := s.nextGrid(&s.grids[i], a, best)
		if err != nil {
			if v < errAt {
				firstErr, errAt = err, v
			}
			continue
		}
		if v < best {
			best, biz = v, s.localDay(v)
		}
	}
	for _, v := range s.once {
		if v > a && v < best {
			best, biz = v, s.localDay(v)
		}
	}
	if firstErr != nil && best >= errAt && !(s.hasEnd && errAt > s.end) {
		return 0, 0, false, firstErr
	}
	if best == math.MaxInt64 || s.hasEnd && best > s.end {
		return 0, 0, false, nil
	}
	return best, biz, true, nil
}

func (s *Spec) localDay(u int64) int {
	return int(floorDiv(u+s.zoneAt(u).off, 86400))
}

// nextGrid returns the grid's first instant > a whose local date the
// grid's day filter accepts, or MaxInt64 if none before bound.
func (s *Spec) nextGrid(g *grid, a, bound int64) (int64, error) {
	u := (floorDiv(a-g.phase, g.every)+1)*g.every + g.phase
	if g.days == nil {
		return u, nil
	}
	for u < bound {
		d := s.localDay(u)
		nd, err := g.days.next(d, d+walkDays)
		if err != nil {
			return int64(nd)*86400 - maxOffset, err
		}
		if nd == d {
			return u, nil
		}
		if nd > d+walkDays {
			break
		}
		// Jump to the grid instant just before the matching date can start.
		t := int64(nd)*86400 - maxOffset
		v := (floorDiv(t-g.phase, g.every)+1)*g.every + g.phase
		u = max(v, u+g.every)
	}
	return math.MaxInt64, nil
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
	st, en := calendar.ZoneBounds(t)
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
// instants ≥ bound (another rule already has one there), with the business
// day it belongs to and whether its wall clock is the instant's own
// reading (false for a time shifted out of a gap). On error, errDay is the
// day the rule could not decide.
//
// It walks candidate days from the local date of a, minus one (a shifted
// gap time or a window crossing midnight can land on the next date). On
// most days the zone keeps one offset over every instant the day's wall
// times could name, so wall times map to instants monotonically and the
// first one after a is the answer. Only on days near a transition does it
// resolve each wall time (calendar.ResolveUnix) and keep the smallest.
func (s *Spec) nextWall(r *rule, a, bound int64) (best int64, biz int, exact, found bool, errDay int, err error) {
	z := s.zoneAt(a)
	today := int(floorDiv(a+z.off, 86400))
	limit := today + walkDays
	if bound < math.MaxInt64-2*maxOffset {
		// No day whose earliest instant is past bound can help, and not
		// asking about it keeps calendar coverage errors to days that
		// matter.
		limit = min(limit, int(floorDiv(bound+maxOffset, 86400)))
	}
	best = bound
	d, bz, err := s.ruleDay(r, today-1, limit)
	for ; err == nil && d <= limit; d, bz, err = s.ruleDay(r, d+1, limit) {
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
					best, biz, exact, found = u, bz, true, true
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
					best, biz, exact, found = u, bz, true, true
				}
				continue
			}
			res := calendar.ResolveUnix(naive, s.loc)
			x, y, n := res.Instants(s.dst)
			if n >= 1 {
				if u := x.Unix(); u > a && u < best {
					best, biz, exact, found = u, bz, res.Kind != calendar.Gap, true
				}
			}
			if n == 2 {
				if u := y.Unix(); u > a && u < best {
					best, biz, exact, found = u, bz, true, true
				}
			}
		}
	}
	if err != nil {
		return best, biz, exact, found, d, err
	}
	return best, biz, exact, found, 0, nil
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
