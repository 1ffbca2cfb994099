package trigger

import (
	"errors"
	"testing"
	"time"
)

func FuzzTriggerParse(f *testing.F) {
	seeds := []string{
		"* * * * *", "*/15 7-9 * * 1-5", "0 30 8 * * mon-fri", "CRON_TZ=Europe/London 0 9 * * 1-5",
		"TZ=America/New_York 30 2 * * *", "0 0 L * *", "0 0 L-3 * *", "0 0 LW * *", "0 0 15W * *",
		"0 17 ? * 5L", "0 0 * * 1#1", "0 12 */2 * 1", "0 12 * * 7", "0 0 30 2 *", "@daily", "@weekly",
		"@quarterly", "@every 90m/15m", "@every 1d", "@once 2027-01-04 09:00", "@once 2027-01-04T09:00:00Z",
		"@reboot", "0 9 * * *; 0 12 * * 6", "30 1 * * * dst skip overlap both", "0 9 * * * in Asia/Kolkata",
		"60 * * * *", "0 0 * sept *", "5-1 * * * *", "", ";", "@every", "0 0 ? 2 1#5",
	}
	for i, s := range seeds {
		f.Add(s, int64(1795000000+i*7919))
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expr string, base int64) {
		tr, err := Parse(expr, Options{Location: ny})
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
		x := b
		for range 5 {
			n := tr.Next(x)
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
