package constraint

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
)

func init() {
	Register("not_before", newNotBefore)
	Register("start_by", newStartBy)
}

// clock is a wall time of day.
type clock struct {
	hour, min, sec int
}

// parseClock reads "H:MM", "HH:MM" or "HH:MM:SS".
func parseClock(s string) (clock, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return clock{}, false
	}
	var n [3]int
	for i, p := range parts {
		if len(p) == 0 || len(p) > 2 || (i > 0 && len(p) != 2) {
			return clock{}, false
		}
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return clock{}, false
		}
		n[i] = v
	}
	c := clock{hour: n[0], min: n[1], sec: n[2]}
	if c.hour > 23 || c.min > 59 || c.sec > 59 {
		return clock{}, false
	}
	return c, true
}

func (c clock) String() string {
	if c.sec != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", c.hour, c.min, c.sec)
	}
	return fmt.Sprintf("%02d:%02d", c.hour, c.min)
}

// readClock is the value of not_before and of start_by's at. YAML 1.1
// reads an unquoted 07:00 as the base-60 number 420, hence the hint.
func readClock(kind string, v any) (clock, error) {
	s, ok := v.(string)
	if !ok {
		if _, isInt := asInt(v); isInt {
			return clock{}, fmt.Errorf("%s: want a time of day like \"07:00\", got %s (quote the time in YAML)", kind, describe(v))
		}
		return clock{}, wantError(kind, "a time of day like \"07:00\"", v)
	}
	c, ok := parseClock(strings.TrimSpace(s))
	if !ok {
		return clock{}, wantError(kind, "a time of day like \"07:00\" or \"07:00:30\"", v)
	}
	return c, nil
}

// on returns the instant at which the wall clock in loc first shows c on
// the given day.
//
// Daylight saving makes this more than time.Date: on a spring-forward day
// a time in the gap (02:30 in New York on 2026-03-08) never shows, and we
// take the next valid instant, the transition itself (03:00 EDT); on a
// fall-back day a time in the overlap (01:30 on 2026-11-01) shows twice,
// and we take the first (01:30 EDT), because a wall time names its first
// occurrence. time.Date guarantees neither choice.
func (c clock) on(year int, month time.Month, day int, loc *time.Location) time.Time {
	naive := time.Date(year, month, day, c.hour, c.min, c.sec, 0, time.UTC)
	// Each offset in force that day yields one candidate; those whose
	// wall clock reads c are real occurrences.
	var best time.Time
	for _, probe := range []time.Time{
		time.Date(year, month, day, 0, 0, 0, 0, loc),
		time.Date(year, month, day, 12, 0, 0, 0, loc),
		time.Date(year, month, day, 23, 59, 59, 0, loc),
	} {
		_, off := probe.Zone()
		cand := naive.Add(-time.Duration(off) * time.Second).In(loc)
		if c.shownAt(cand, year, month, day) && (best.IsZero() || cand.Before(best)) {
			best = cand
		}
	}
	if !best.IsZero() {
		return best
	}
	// A gap: time.Date lands on one side of the transition; the zone
	// bounds around it give the transition instant.
	t := time.Date(year, month, day, c.hour, c.min, c.sec, 0, loc)
	start, end := t.ZoneBounds()
	wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	if wall.After(naive) {
		if !start.IsZero() {
			return start
		}
	} else if !end.IsZero() {
		return end
	}
	return t
}

func (c clock) shownAt(t time.Time, year int, month time.Month, day int) bool {
	y, m, d := t.Date()
	return y == year && m == month && d == day && t.Hour() == c.hour && t.Minute() == c.min && t.Second() == c.sec
}

// periodDay resolves c on the first day of the input's period, in the
// job's zone. ok is false for periods without a start (oneshot).
func periodDay(c clock, in Input) (t time.Time, loc *time.Location, ok bool) {
	if in.Period.Start.IsZero() || in.Period.Type == talon.Oneshot {
		return time.Time{}, nil, false
	}
	loc = time.UTC
	if in.Job != nil && in.Job.Location != nil {
		loc = in.Job.Location
	}
	y, m, d := in.Period.Start.In(loc).Date()
	return c.on(y, m, d, loc), loc, true
}

// notBefore blocks a run until a wall time on its period's first day. For
// periods longer than a day (weekly, monthly…) the time applies to the
// first day only; for hourly periods it applies to the hour's day, so
// hours before the time wait for it and later hours pass. Oneshot periods
// have no day and always pass.
type notBefore struct {
	at clock
}

func newNotBefore(v any) (Constraint, error) {
	c, err := readClock("not_before", v)
	if err != nil {
		return nil, err
	}
	return notBefore{at: c}, nil
}

func (notBefore) Name() string { return "not_before" }

func (n notBefore) Check(_ context.Context, in Input) Answer {
	t, loc, ok := periodDay(n.at, in)
	if !ok {
		return Answer{Action: talon.ActionPass, Reason: "oneshot period has no day"}
	}
	if in.Now.Before(t) {
		return Answer{
			Action:    talon.ActionBlock,
			Reason:    fmt.Sprintf("not before %s %s (in %s)", n.at, loc, formatWait(t.Sub(in.Now))),
			RecheckAt: t,
		}
	}
	return Answer{Action: talon.ActionPass, Reason: fmt.Sprintf("after %s %s", n.at, loc)}
}

// startBy gives up on a run that has not started by a deadline on its
// period's first day: it passes before the deadline (asking to be
// re-checked at it, so the engine wakes to give up), and answers its
// action (fail by default, or cancel) from the deadline on. Only the map
// form's keys "at" and "action" are accepted; a deadline on a later day
// is not expressible yet.
type startBy struct {
	at     clock
	action talon.Action
}

func newStartBy(v any) (Constraint, error) {
	s := startBy{action: talon.ActionFail}
	switch v := v.(type) {
	case string:
		c, err := readClock("start_by", v)
		if err != nil {
			return nil, err
		}
		s.at = c
	case map[string]any:
		if err := checkKeys("start_by", v, "at", "action"); err != nil {
			return nil, err
		}
		at, ok := v["at"]
		if !ok {
			return nil, fmt.Errorf("start_by: missing \"at\" (want {at: \"09:30\", action: fail|cancel})")
		}
		c, err := readClock("start_by: at", at)
		if err != nil {
			return nil, err
		}
		s.at = c
		if a, ok := v["action"]; ok {
			s.action, err = asAction("start_by", "action", a, talon.ActionFail, talon.ActionCancel)
			if err != nil {
				return nil, err
			}
		}
	default:
		return nil, wantError("start_by", "a time of day like \"09:30\" or {at: \"09:30\", action: fail|cancel}", v)
	}
	return s, nil
}

func (startBy) Name() string { return "start_by" }

func (s startBy) Check(_ context.Context, in Input) Answer {
	t, loc, ok := periodDay(s.at, in)
	if !ok {
		return Answer{Action: talon.ActionPass, Reason: "oneshot period has no day"}
	}
	if in.Now.Before(t) {
		return Answer{
			Action:    talon.ActionPass,
			Reason:    fmt.Sprintf("start by %s %s (in %s)", s.at, loc, formatWait(t.Sub(in.Now))),
			RecheckAt: t,
		}
	}
	return Answer{Action: s.action, Reason: fmt.Sprintf("not started by %s %s", s.at, loc)}
}
