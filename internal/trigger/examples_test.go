package trigger

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// exampleCals stands in for the calendars the examples name: TEST-US
// holidays for the US ones, and holiday-free calendars for UK and
// EU-TARGET (which changes nothing below).
func exampleCals(t testing.TB) map[string]*calendar.Calendar {
	us := testUS(t)
	return map[string]*calendar.Calendar{"TEST-US": us, "US-NYSE": us, "US": us, "UK": {Name: "UK"}, "EU-TARGET": {Name: "EU-TARGET"}}
}

// TestExamples parses 35 example expressions and checks the
// first fires of those with times that english.tsv and cron.tsv do not
// already cover.
func TestExamples(t *testing.T) {
	t.Parallel()
	const base = "2026-11-26T18:45:00Z"
	tests := []struct {
		n    int
		expr string
		base string // default base
		want []string
	}{
		{n: 1, expr: "every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", want: []string{"2026-11-27T07:00:00Z", "2026-11-27T07:15:00Z"}},
		{n: 2, expr: "every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm in America/New_York", want: []string{"2026-11-26T19:00:00Z", "2026-11-26T20:00:00Z", "2026-11-26T21:00:00Z", "2026-11-26T21:05:00Z"}},
		{n: 3, expr: "on weekdays: every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm", base: "2026-11-27T16:50:00Z", want: []string{"2026-11-27T16:55:00Z", "2026-11-30T07:00:00Z"}},
		{n: 4, expr: "every 15 minutes between 7-10am on weekdays, hourly until 4pm", base: "2026-11-27T15:30:00Z", want: []string{"2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z"}},
		{n: 5, expr: "*/15 7-9 * * 1-5", want: []string{"2026-11-27T07:00:00Z"}},
		{n: 6, expr: "0 30 8 * * mon-fri", want: []string{"2026-11-27T08:30:00Z"}},
		{n: 7, expr: "CRON_TZ=Europe/London 0 9 * * 1-5", want: []string{"2026-11-27T09:00:00Z"}},
		{n: 8, expr: "@daily", want: []string{"2026-11-27T00:00:00Z"}},
		{n: 8, expr: "@weekly", want: []string{"2026-11-29T00:00:00Z"}},
		{n: 8, expr: "@quarterly", want: []string{"2027-01-01T00:00:00Z"}},
		{n: 9, expr: "@every 90m/15m", want: []string{"2026-11-26T19:45:00Z", "2026-11-26T21:15:00Z"}},
		{n: 10, expr: "every 5 minutes from 10:00 to 14:00", base: "2026-11-27T13:50:00Z", want: []string{"2026-11-27T13:55:00Z", "2026-11-27T14:00:00Z", "2026-11-28T10:00:00Z"}},
		{n: 11, expr: "every 2 hours from 14:05 to 16:05", want: []string{"2026-11-27T14:05:00Z", "2026-11-27T16:05:00Z", "2026-11-28T14:05:00Z"}},
		{n: 12, expr: "every 2 hours synchronized", want: []string{"2026-11-26T20:00:00Z", "2026-11-26T22:00:00Z"}},
		{n: 13, expr: "every 25 minutes from 09:00 until 11:00", want: []string{"2026-11-27T09:00:00Z", "2026-11-27T09:25:00Z", "2026-11-27T09:50:00Z", "2026-11-27T10:15:00Z", "2026-11-27T10:40:00Z", "2026-11-28T09:00:00Z"}},
		{n: 14, expr: "every monday 09:00", want: []string{"2026-11-30T09:00:00Z", "2026-12-07T09:00:00Z"}},
		{n: 15, expr: "every mon,wed,fri 08:30", want: []string{"2026-11-27T08:30:00Z", "2026-11-30T08:30:00Z", "2026-12-02T08:30:00Z"}},
		{n: 16, expr: "1st,third mon of sep,oct,nov 17:00", want: []string{"2027-09-06T17:00:00Z", "2027-09-20T17:00:00Z"}},
		{n: 17, expr: "first sunday of quarter 00:00", want: []string{"2027-01-03T00:00:00Z"}},
		{n: 18, expr: "1,15 of month 09:00", want: []string{"2026-12-01T09:00:00Z", "2026-12-15T09:00:00Z", "2027-01-01T09:00:00Z"}},
		{n: 19, expr: "last day of month at 23:00", want: []string{"2026-11-30T23:00:00Z", "2026-12-31T23:00:00Z"}},
		{n: 20, expr: "last friday of month at 17:00", want: []string{"2026-11-27T17:00:00Z", "2026-12-25T17:00:00Z"}},
		{n: 21, expr: "2nd tuesday of month at 10:00", want: []string{"2026-12-08T10:00:00Z", "2027-01-12T10:00:00Z"}},
		{n: 22, expr: "first business day of month at 06:00", want: []string{"2026-12-01T06:00:00Z", "2027-01-01T06:00:00Z"}},
		{n: 23, expr: "2nd business day of month at 06:00", want: []string{"2026-12-02T06:00:00Z", "2027-01-04T06:00:00Z"}},
		{n: 24, expr: "last business day of month at 18:00 using US-NYSE", want: []string{"2026-11-30T18:00:00Z", "2026-12-31T18:00:00Z", "2027-01-29T18:00:00Z"}},
		{n: 25, expr: "last business day of quarter at 18:00", want: []string{"2026-12-31T18:00:00Z", "2027-03-31T18:00:00Z"}},
		{n: 26, expr: "3rd business day of quarter at 07:00 using UK", want: []string{"2027-01-05T07:00:00Z", "2027-04-05T07:00:00Z"}},
		{n: 27, expr: "15th of month at 09:00 adjust preceding using TEST-US", want: []string{"2026-12-15T09:00:00Z", "2027-01-15T09:00:00Z", "2027-02-12T09:00:00Z"}},
		{n: 28, expr: "25th of month at 09:00 adjust modified following using EU-TARGET", base: "2027-03-26T00:00:00Z", want: []string{"2027-04-26T09:00:00Z", "2027-05-25T09:00:00Z"}},
		{n: 29, expr: "business days at 18:00 using US + UK except on 2026-12-24", base: "2026-12-22T19:00:00Z", want: []string{"2026-12-23T18:00:00Z", "2026-12-28T18:00:00Z"}},
		{n: 30, expr: "every 30 minutes between 1-4am in America/New_York dst shift overlap both", base: "2027-11-07T04:00:00Z", want: []string{"2027-11-07T05:00:00Z", "2027-11-07T05:30:00Z", "2027-11-07T06:00:00Z", "2027-11-07T06:30:00Z", "2027-11-07T07:00:00Z"}},
		{n: 31, expr: "daily at 02:30 in America/New_York", base: "2027-03-13T12:00:00Z", want: []string{"2027-03-14T07:30:00Z", "2027-03-15T06:30:00Z"}},
		{n: 32, expr: "on fridays: every 15 minutes between 10pm-2am", base: "2026-11-28T01:30:00Z", want: []string{"2026-11-28T01:45:00Z", "2026-12-04T22:00:00Z"}},
		{n: 33, expr: "weekly on fri at 18:00 starting 2027-01-01 ending 2027-12-31 jitter 5m"}, // TestJitter
		{n: 34, expr: "once at 2027-01-04 09:00 in Europe/London", want: []string{"2027-01-04T09:00:00Z"}},
		{n: 35, expr: "every 90 minutes starting 2026-11-26T00:00:00Z", want: []string{"2026-11-26T19:30:00Z", "2026-11-26T21:00:00Z"}},
	}
	cals := exampleCals(t)
	seen := map[int]bool{}
	for _, tt := range tests {
		seen[tt.n] = true
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			tr, err := Parse(tt.expr, Options{Calendars: cals})
			if err != nil {
				t.Fatalf("example %d: %v", tt.n, err)
			}
			b := base
			if tt.base != "" {
				b = tt.base
			}
			if got := fires(t, tr, mustTime(t, b), len(tt.want)); !slices.Equal(got, tt.want) {
				t.Errorf("example %d:\ngot  %v\nwant %v", tt.n, got, tt.want)
			}
		})
	}
	if len(seen) != 35 {
		t.Errorf("%d examples, want 35", len(seen))
	}
}

// TestBusinessDate checks Fire.Date: a window crossing midnight belongs
// to its start date, and an adjusted fire to the unadjusted date.
func TestBusinessDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr, base, at, date string
	}{
		{name: "window crossing midnight", expr: "on fridays: every 15 minutes between 10pm-2am", base: "2026-11-28T01:30:00Z", at: "2026-11-28T01:45:00Z", date: "2026-11-27"},
		{name: "adjust following keeps the month-end date", expr: "last day of month at 09:00 adjust following", base: "2027-01-30T00:00:00Z", at: "2027-02-01T09:00:00Z", date: "2027-01-31"},
		{name: "adjust preceding", expr: "15th of month at 09:00 adjust preceding using TEST-US", base: "2027-02-01T00:00:00Z", at: "2027-02-12T09:00:00Z", date: "2027-02-15"},
		{name: "zone date, not UTC", expr: "daily at 23:30 in America/New_York", base: "2027-03-31T12:00:00Z", at: "2027-04-01T03:30:00Z", date: "2027-03-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSpec(tt.expr, Options{Calendars: exampleCals(t)})
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.NextFire(mustTime(t, tt.base))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.At.UTC().Format(time.RFC3339); got != tt.at {
				t.Errorf("At = %s, want %s", got, tt.at)
			}
			if got := f.Date.String(); got != tt.date {
				t.Errorf("Date = %s, want %s", got, tt.date)
			}
		})
	}
}

// TestCalendarCoverage: past a calendar's Through, NextFire returns an
// error wrapping calendar.ErrNotCovered (Next returns the zero time), but
// only when the answer depends on the missing dates.
func TestCalendarCoverage(t *testing.T) {
	t.Parallel()
	through, _ := calendar.ParseDate("2027-06-30")
	cals := map[string]*calendar.Calendar{"SHORT": {Name: "SHORT", Through: through}}
	tests := []struct {
		name, expr, base, want string // want: RFC 3339, or "" for a coverage error
	}{
		{name: "inside coverage", expr: "business days at 18:00 using SHORT", base: "2027-06-29T19:00:00Z", want: "2027-06-30T18:00:00Z"},
		{name: "past coverage", expr: "business days at 18:00 using SHORT", base: "2027-06-30T19:00:00Z"},
		{name: "business ordinal past coverage", expr: "last business day of month using SHORT", base: "2027-06-30T19:00:00Z"},
		{name: "adjust past coverage", expr: "1st day of month adjust following using SHORT", base: "2027-06-30T19:00:00Z"},
		{name: "except holidays past coverage", expr: "daily at 09:00 using SHORT except holidays", base: "2027-06-30T19:00:00Z"},
		{name: "another rule fires first", expr: "business days at 18:00; daily at 09:00 using SHORT", base: "2027-06-30T19:00:00Z"},
		{name: "no calendar rule", expr: "daily at 09:00 using SHORT", base: "2027-06-30T19:00:00Z", want: "2027-07-01T09:00:00Z"},
		{name: "ending before the gap in coverage", expr: "business days at 18:00 using SHORT ending 2027-06-30", base: "2027-06-30T19:00:00Z", want: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSpec(tt.expr, Options{Calendars: cals})
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.NextFire(mustTime(t, tt.base))
			switch tt.want {
			case "":
				if !errors.Is(err, calendar.ErrNotCovered) {
					t.Fatalf("NextFire = %v, %v; want ErrNotCovered", f.At, err)
				}
				if n := s.Next(mustTime(t, tt.base)); !n.IsZero() {
					t.Errorf("Next = %s, want zero", n)
				}
			case "none":
				if err != nil || !f.At.IsZero() {
					t.Errorf("NextFire = %v, %v; want none", f.At, err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got := f.At.UTC().Format(time.RFC3339); got != tt.want {
					t.Errorf("At = %s, want %s", got, tt.want)
				}
			}
		})
	}
}

// TestJitter: deterministic per ID, within [0, jitter), capped before
// the next nominal instant, never moving the nominal time; example 33's
// bounds hold.
func TestJitter(t *testing.T) {
	t.Parallel()
	expr := "weekly on fri at 18:00 starting 2027-01-01 ending 2027-12-31 jitter 5m"
	a, err := ParseSpec(expr, Options{ID: "report/0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSpec(expr, Options{ID: "report/1"})
	if err != nil {
		t.Fatal(err)
	}
	x, differ, n := mustTime(t, "2026-11-26T18:45:00Z"), false, 0
	for {
		fa, err := a.NextFire(x)
		if err != nil {
			t.Fatal(err)
		}
		if fa.At.IsZero() {
			break
		}
		n++
		if fa.Nominal.Weekday() != time.Friday || fa.Nominal.Hour() != 18 || fa.Nominal.Minute() != 0 {
			t.Fatalf("nominal %s is not Friday 18:00", fa.Nominal)
		}
		if d := fa.At.Sub(fa.Nominal); d < 0 || d >= 5*time.Minute {
			t.Fatalf("jitter %s outside [0, 5m)", d)
		}
		again, _ := a.NextFire(x)
		if again != fa {
			t.Fatalf("not deterministic: %v then %v", fa, again)
		}
		if fb, _ := b.NextFire(x); fb.Nominal.Equal(fa.Nominal) && !fb.At.Equal(fa.At) {
			differ = true
		}
		x = fa.At
	}
	if n != 53 { // Fridays of 2027: Jan 1 … Dec 31
		t.Errorf("%d fires, want 53", n)
	}
	if !differ {
		t.Error("two IDs got the same jitter every time")
	}
	// Capped before the next nominal instant.
	c, err := ParseSpec("every minute jitter 1h", Options{ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	x = mustTime(t, "2026-11-26T18:45:00Z")
	for range 200 {
		f, err := c.NextFire(x)
		if err != nil {
			t.Fatal(err)
		}
		if d := f.At.Sub(f.Nominal); d < 0 || d >= time.Minute || !f.At.After(x) {
			t.Fatalf("fire %v after %s", f, x)
		}
		x = f.At
	}
}

// TestEnglishErrors: positions, what was expected, and hints.
func TestEnglishErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		expr   string
		offset int
		msg    string
		hint   string
	}{
		{name: "unit typo", expr: "every 15 minuts", offset: 9, msg: `unknown unit "minuts"; want minutes or hours`, hint: `did you mean "minutes"?`},
		{name: "unit glued", expr: "every 15minutes", offset: 6, msg: "bad count", hint: "every 15 minutes"},
		{name: "clause word typo", expr: "evry 15 minutes", offset: 0, msg: `unknown word "evry"`, hint: `did you mean "every"?`},
		{name: "step not dividing a day", expr: "every 7 minutes", offset: 0, msg: "does not divide a day", hint: "starting"},
		{name: "synchronized not dividing", expr: "every 7 minutes synchronized", offset: 16, msg: "does not divide a day"},
		{name: "empty window", expr: "every 5 minutes between 10-10am", offset: 16, msg: "empty window"},
		{name: "bad time", expr: "every 5 minutes between 7-13pm", offset: 26, msg: "bad time"},
		{name: "window separator", expr: "every 5 minutes from 9am 5pm", offset: 25, msg: `want "to" or "through" or "until" or "till"`},
		{name: "space in ordinal list", expr: "1st, third mon of month", offset: 3, msg: "ordinal list ends here", hint: "without spaces"},
		{name: "sixth monday", expr: "6th monday of month at 09:00", offset: 0, msg: "never exists; want at most 5"},
		{name: "bad ordinal suffix", expr: "2th friday of month", offset: 0, msg: "bad ordinal", hint: `"2nd"`},
		{name: "day name typo", expr: "every mnoday at 09:00", offset: 6, msg: `unknown day "mnoday"`, hint: "monday"},
		{name: "month typo", expr: "1st mon of setp at 09:00", offset: 11, msg: `unknown period "setp"`, hint: "sep"},
		{name: "31st of february", expr: "31st day of feb at 09:00", offset: 0, msg: "never fires"},
		{name: "scope excludes clause days", expr: "on weekends: every hour on weekdays", offset: 13, msg: "never fires"},
		{name: "business and non-business", expr: "business days at 09:00 on non-business days", offset: 23, msg: "never fires"},
		{name: "unknown calendar", expr: "business days at 18:00 using TEST-UZ", offset: 29, msg: `unknown calendar "TEST-UZ"`, hint: `did you mean "TEST-US"?`},
		{name: "unknown zone", expr: "daily in Europe/Lodnon", offset: 9, msg: `unknown time zone "Europe/Lodnon"`},
		{name: "two zones", expr: "daily in UTC in Europe/London", offset: 16, msg: "one time zone"},
		{name: "adjust typo", expr: "15th of month adjust folowing", offset: 21, msg: "unknown adjustment", hint: `"following"`},
		{name: "except typo", expr: "daily except holidys", offset: 13, msg: "after except", hint: `"holidays"`},
		{name: "except bad date", expr: "daily except on 2026-13-01", offset: 16, msg: "bad date"},
		{name: "ending before starting", expr: "daily starting 2027-01-02 ending 2027-01-01", offset: 33, msg: "ending is before starting"},
		{name: "jitter zero", expr: "daily jitter 0s", offset: 13, msg: "at least 1s"},
		{name: "jitter over a day", expr: "daily jitter 25h", offset: 13, msg: "at most 24h"},
		{name: "long word cut", expr: "every " + strings.Repeat("x", 1000), offset: 6, msg: `"` + strings.Repeat("x", 79) + `…"`},
		{name: "monthly on", expr: "monthly on fri", offset: 8, msg: "first day of its period", hint: "first fri of month"},
		{name: "once without time", expr: "once at 2027-01-04", offset: 18, msg: "want a time"},
		{name: "qualifier typo after english", expr: "daily at 09:00 jiter 5m", offset: 15, msg: `unexpected "jiter"`, hint: `"jitter"`},
		{name: "missing clause after scope", expr: "on weekdays:", offset: 12, msg: "after the day scope"},
		{name: "scope is not days", expr: "every hour: daily", offset: 0, msg: "want days"},
		{name: "times without at", expr: "every monday 09:00 10:00", offset: 19, msg: "commas"},
	}
	cals := map[string]*calendar.Calendar{"TEST-US": testUS(t)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.expr, Options{Calendars: cals})
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) err = %v, want *Error", tt.expr, err)
			}
			if pe.Offset != tt.offset {
				t.Errorf("Offset = %d, want %d (%v)", pe.Offset, tt.offset, pe)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to contain %q", pe.Msg, tt.msg)
			}
			if !strings.Contains(pe.Hint, tt.hint) {
				t.Errorf("Hint = %q, want it to contain %q", pe.Hint, tt.hint)
			}
		})
	}
}
