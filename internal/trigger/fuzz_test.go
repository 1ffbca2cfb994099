package trigger

import (
	"errors"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

func FuzzTriggerParse(f *testing.F) {
	seeds := []string{
		"* * * * *", "*/15 7-9 * * 1-5", "0 30 8 * * mon-fri", "CRON_TZ=Europe/London 0 9 * * 1-5",
		"TZ=America/New_York 30 2 * * *", "0 0 L * *", "0 0 L-3 * *", "0 0 LW * *", "0 0 15W * *",
		"0 17 ? * 5L", "0 0 * * 1#1", "0 12 */2 * 1", "0 12 * * 7", "0 0 30 2 *", "@daily", "@weekly",
		"@quarterly", "@every 90m/15m", "@every 1d", "@once 2027-01-04 09:00", "@once 2027-01-04T09:00:00Z",
		"@reboot", "0 9 * * *; 0 12 * * 6", "30 1 * * * dst skip overlap both", "0 9 * * * in Asia/Kolkata",
		"60 * * * *", "0 0 * sept *", "5-1 * * * *", "", ";", "@every", "0 0 ? 2 1#5",
		// English (examples and error cases).
		"every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm",
		"on weekdays: every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm in Europe/London",
		"every 15 minutes between 7-10am on weekdays, hourly until 4pm", "every 5 minutes from 10:00 to 14:00",
		"every 2 hours synchronized", "every 25 minutes from 09:00 until 11:00", "every mon,wed,fri 08:30",
		"1st,third mon of sep,oct,nov 17:00", "first sunday of quarter 00:00", "1,15 of month 09:00",
		"last day of month at 23:00 adjust following", "2nd last friday of month at 17:00", "2nd business day of quarter at 06:00",
		"last business day of month at 18:00 using TEST-US", "15th of month at 09:00 adjust preceding using TEST-US",
		"business days at 18:00 using TEST-US + weekends-only except on 2026-12-24,2027-01-04 except holidays",
		"every 30 minutes between 1-4am in America/New_York dst shift overlap both", "on fridays: every 15 minutes between 10pm-2am",
		"weekly on fri at 18:00 starting 2027-01-01 ending 2027-12-31 jitter 5m", "once at 2027-01-04 09:00 in Europe/London",
		"every 90 minutes on weekdays starting 2026-11-26T00:00:00Z", "at 9, 12 and 5pm on non-business days", "daily at noon; @hourly",
		"first month of quarter", "1st mon of first,last month of quarter at midnight", "every 15 minuts", "1st, third mon of month",
		"every 5 minutes between 10-10am", "31st day of feb", "on weekends: every hour on weekdays",
	}
	for i, s := range seeds {
		f.Add(s, int64(1795000000+i*7919))
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	opt := Options{Location: ny, Calendars: map[string]*calendar.Calendar{"TEST-US": testUS(f)}, ID: "fuzz"}
	f.Fuzz(func(t *testing.T, expr string, base int64) {
		tr, err := Parse(expr, opt)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q): %T is not *Error", expr, err)
			}
			if pe.Offset < 0 || pe.Offset > len(expr) {
				t.Fatalf("Parse(%q): offset %d outside [0, %d]", expr, pe.Offset, len(expr))
			}
			if pe.Msg == "" {
				t.Fatalf("Parse(%q): empty message", expr)
			}
			return
		}
		// Keep bases within years 1900-2200, where zones are meaningful.
		b := time.Unix(-2208988800+((base%(300*365*86400))+300*365*86400)%(300*365*86400), 0)
		// parse → String → parse gives the same spec: the same canonical
		// text and the same fires.
		canon := tr.(*Spec).String()
		tr2, err := ParseSpec(canon, opt)
		if err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", expr, canon, err)
		}
		if c2 := tr2.String(); c2 != canon {
			t.Fatalf("%q: canonical form %q prints back as %q", expr, canon, c2)
		}
		x := b
		for range 5 {
			n := tr.Next(x)
			if n2 := tr2.Next(x); !n2.Equal(n) {
				t.Fatalf("%q: Next(%s) = %s, but %s for its canonical form %q", expr, x, n, n2, canon)
			}
			if n.IsZero() {
				return
			}
			if !n.After(x) {
				t.Fatalf("%q: Next(%s) = %s, not after", expr, x, n)
			}
			x = n
		}
	})
}
