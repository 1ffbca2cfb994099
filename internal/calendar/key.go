package calendar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon"
)

// ErrBadKey is wrapped by every ParseKey error.
var ErrBadKey = errors.New("bad period key")

// KeyError is a ParseKey error: what was wrong with Key, and the form that
// was expected.
type KeyError struct {
	Key  string
	Msg  string
	Want string // the expected form, such as "daily/YYYY-MM-DD"
}

func (e *KeyError) Error() string {
	s := fmt.Sprintf("bad period key %q: %s", e.Key, e.Msg)
	if e.Want != "" {
		s += "; want " + e.Want
	}
	return s
}

// Is makes errors.Is(err, ErrBadKey) true.
func (e *KeyError) Is(target error) bool { return target == ErrBadKey }

var keyForms = map[talon.PeriodType]string{
	talon.Hourly:    "hourly/YYYY-MM-DDTHH",
	talon.Daily:     "daily/YYYY-MM-DD",
	talon.Weekly:    "weekly/YYYY-Www",
	talon.Monthly:   "monthly/YYYY-MM",
	talon.Quarterly: "quarterly/YYYY-Qn",
	talon.Yearly:    "yearly/YYYY",
	talon.Oneshot:   "oneshot/NAME",
}

// ParseKey parses a period key ("daily/2026-11-26", "prod:weekly/2026-W48",
// "oneshot/NAME") into a period in loc (nil: UTC); it accepts exactly what
// talon.Period.Key produces, so ParseKey(k).Key() == k. A daily key names a
// calendar day; ParseKey knows no business calendar. Errors are *KeyError
// and say which form was expected; a wall time the zone skips (an hour in
// a DST gap) is an error too.
func ParseKey(key string, loc *time.Location) (talon.Period, error) {
	if loc == nil {
		loc = time.UTC
	}
	bad := func(want, format string, args ...any) (talon.Period, error) {
		return talon.Period{}, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...), Want: want}
	}
	slash := strings.IndexByte(key, '/')
	if slash < 0 {
		return bad("[ENV:]TYPE/VALUE, such as daily/2026-11-26", "no \"/\"")
	}
	head, val := key[:slash], key[slash+1:]
	var env string
	if c := strings.LastIndexByte(head, ':'); c >= 0 {
		env, head = head[:c], head[c+1:]
		if env == "" {
			return bad("ENV:TYPE/VALUE", "empty environment before \":\"")
		}
	}
	typ := talon.PeriodType(head)
	want, ok := keyForms[typ]
	if !ok {
		hint := ""
		if l := talon.PeriodType(strings.ToLower(head)); keyForms[l] != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", l)
		}
		return bad("one of hourly, daily, weekly, monthly, quarterly, yearly, oneshot", "unknown period type %q%s", head, hint)
	}
	if typ == talon.Oneshot {
		if val == "" {
			return bad(want, "empty name")
		}
		return talon.Period{Type: typ, Name: val, Environment: env}, nil
	}
	sc := keyScanner{s: val}
	var w Wall
	var idx int
	switch typ {
	case talon.Yearly:
		w.Year = sc.num(4)
		w.Month, w.Day = time.January, 1
	case talon.Quarterly:
		w.Year = sc.num(4)
		sc.lit("-Q")
		q := sc.num(1)
		if sc.err == "" && (q < 1 || q > 4) {
			return bad(want, "quarter %d out of range", q)
		}
		w.Month, w.Day = time.Month(3*(q-1)+1), 1
	case talon.Monthly:
		w.Year = sc.num(4)
		sc.lit("-")
		w.Month, w.Day = time.Month(sc.num(2)), 1
	case talon.Weekly:
		y := sc.num(4)
		sc.lit("-W")
		wk := sc.num(2)
		if sc.err == "" {
			// ISO week 1 holds January 4th; weeks start on Monday.
			jan4 := Date{y, time.January, 4}
			mon := jan4.AddDays(-((int(jan4.Weekday()) + 6) % 7))
			w.Date = mon.AddDays(7 * (wk - 1))
			if wk < 1 || wk > 53 {
				return bad(want, "week %d out of range", wk)
			}
			if wk == 53 && isoYear(w.Date) != y {
				return bad(want, "week 53 out of range: %04d has 52 ISO weeks", y)
			}
		}
	case talon.Daily, talon.Hourly:
		w.Year = sc.num(4)
		sc.lit("-")
		w.Month = time.Month(sc.num(2))
		sc.lit("-")
		w.Day = sc.num(2)
		if typ == talon.Hourly {
			sc.lit("T")
			w.Hour = sc.num(2)
		}
	}
	if sc.err != "" {
		return bad(want, "%s", sc.err)
	}
	if sc.i != len(sc.s) {
		return bad(want, "unexpected %q after the value", sc.s[sc.i:])
	}
	if w.Year < 1 {
		return bad(want, "year %04d out of range", w.Year)
	}
	if w.Month < 1 || w.Month > 12 {
		return bad(want, "month %d out of range", int(w.Month))
	}
	if w.Day < 1 || w.Day > DaysIn(w.Year, w.Month) {
		return bad(want, "day %d out of range for %04d-%02d", w.Day, w.Year, int(w.Month))
	}
	if w.Hour > 23 {
		return bad(want, "hour %d out of range", w.Hour)
	}
	idx = indexOf(typ, w)
	s, e := bounds(typ, idx, loc)
	p := talon.Period{Type: typ, Start: s, End: e, Environment: env}
	// The clocks may skip the whole span (a wall hour in a DST gap); then
	// the period has no instants and Key would name its neighbour.
	if !s.Before(e) || p.Key() != key {
		return bad(want, "%s does not exist in %s (the clocks skip it)", val, loc)
	}
	return p, nil
}

func isoYear(d Date) int {
	// The ISO year of a date is the year of the Thursday of its week.
	thu := d.AddDays(3 - (int(d.Weekday())+6)%7)
	return thu.Year
}

// keyScanner reads fixed-width fields; it records the first problem and
// ignores later calls, so the parser reads straight through.
type keyScanner struct {
	s   string
	i   int
	err string
}

func (k *keyScanner) num(width int) int {
	if k.err != "" {
		return 0
	}
	n := 0
	for j := 0; j < width; j++ {
		if k.i+j >= len(k.s) || k.s[k.i+j] < '0' || k.s[k.i+j] > '9' {
			k.err = fmt.Sprintf("want %d digits at offset %d", width, k.i)
			return 0
		}
		n = n*10 + int(k.s[k.i+j]-'0')
	}
	k.i += width
	return n
}

func (k *keyScanner) lit(l string) {
	if k.err != "" {
		return
	}
	if !strings.HasPrefix(k.s[k.i:], l) {
		k.err = fmt.Sprintf("want %q at offset %d", l, k.i)
		return
	}
	k.i += len(l)
}
