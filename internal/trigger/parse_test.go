package trigger

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCronSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		zone string
		base string
		want []string
	}{
		{name: "vixie AND when dom starts with star", expr: "0 12 */2 * 1", base: "2026-11-26T18:45:00Z", want: []string{"2026-12-07T12:00:00Z", "2026-12-21T12:00:00Z", "2027-01-11T12:00:00Z", "2027-01-25T12:00:00Z"}},
		{name: "vixie OR when both restricted", expr: "0 12 1-7 * 1", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-30T12:00:00Z", "2026-12-01T12:00:00Z", "2026-12-02T12:00:00Z"}},
		{name: "dow 7 is sunday", expr: "0 12 * * 7", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-29T12:00:00Z", "2026-12-06T12:00:00Z", "2026-12-13T12:00:00Z"}},
		{name: "question mark", expr: "0 12 ? * 2", base: "2026-11-26T18:45:00Z", want: []string{"2026-12-01T12:00:00Z"}},
		{name: "six fields seconds first", expr: "0 30 8 * * mon-fri", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T08:30:00Z", "2026-11-30T08:30:00Z", "2026-12-01T08:30:00Z"}},
		{name: "six fields every 20 seconds", expr: "*/20 * * * * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-26T18:45:20Z", "2026-11-26T18:45:40Z", "2026-11-26T18:46:00Z"}},
		{name: "six fields midnight", expr: "0 0 0 * * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T00:00:00Z"}},
		{name: "name range to sunday", expr: "0 9 * * FRI-SUN", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T09:00:00Z", "2026-11-28T09:00:00Z", "2026-11-29T09:00:00Z", "2026-12-04T09:00:00Z"}},
		{name: "full names mixed case", expr: "0 9 1 January,JULY *", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-01T09:00:00Z", "2027-07-01T09:00:00Z"}},
		{name: "n/s runs to max", expr: "50/5 9 * * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T09:50:00Z", "2026-11-27T09:55:00Z", "2026-11-28T09:50:00Z"}},
		{name: "L-3", expr: "0 0 L-3 * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T00:00:00Z", "2026-12-28T00:00:00Z", "2027-01-28T00:00:00Z", "2027-02-25T00:00:00Z"}},
		{name: "LW", expr: "0 0 LW * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z"}},
		{name: "1W saturday moves to monday", expr: "0 0 1W 5 *", base: "2027-01-01T00:00:00Z", want: []string{"2027-05-03T00:00:00Z"}},
		{name: "31W sunday moves to friday", expr: "0 0 31W 10 *", base: "2027-01-01T00:00:00Z", want: []string{"2027-10-29T00:00:00Z"}},
		{name: "last friday", expr: "0 17 ? * 5L", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T17:00:00Z", "2026-12-25T17:00:00Z", "2027-01-29T17:00:00Z"}},
		{name: "fifth friday", expr: "0 17 * * FRI#5", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-29T17:00:00Z", "2027-04-30T17:00:00Z"}},
		{name: "28-year walk: fifth monday of february", expr: "0 0 ? 2 1#5", base: "2017-01-01T00:00:00Z", want: []string{"2044-02-29T00:00:00Z"}},
		{name: "star quirk: feb 1 or 29 on monday", expr: "0 0 */28 2 1", base: "2038-03-01T00:00:00Z", want: []string{"2044-02-01T00:00:00Z", "2044-02-29T00:00:00Z"}},
		{name: "quarterly", expr: "@quarterly", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z", "2027-07-01T00:00:00Z"}},
		{name: "weekly is sunday", expr: "@WEEKLY", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-29T00:00:00Z"}},
		{name: "every with phase on epoch grid", expr: "@every 90m/15m", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-26T19:45:00Z", "2026-11-26T21:15:00Z", "2026-11-26T22:45:00Z"}},
		{name: "every in days ignores dst", expr: "@every 1d", zone: "America/New_York", base: "2027-03-13T12:00:00Z", want: []string{"2027-03-14T00:00:00Z", "2027-03-15T00:00:00Z"}},
		{name: "once local in zone", expr: "@once 2027-01-04 09:00 in Europe/London", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-04T09:00:00Z"}},
		{name: "once rfc 3339", expr: "@once 2027-01-04T09:00:00+01:00", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-04T08:00:00Z"}},
		{name: "once in a gap shifts", expr: "@once 2027-03-14T02:30", zone: "America/New_York", base: "2026-11-26T18:45:00Z", want: []string{"2027-03-14T07:30:00Z"}},
		{name: "once 9am", expr: "@once 2027-01-04 9am", base: "2026-11-26T18:45:00Z", want: []string{"2027-01-04T09:00:00Z"}},
		{name: "once in the past", expr: "@once 2020-01-01T00:00:00Z", base: "2026-11-26T18:45:00Z", want: nil},
		{name: "union of bodies", expr: "0 9 * * 1-5; 0 12 * * 6,0", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T09:00:00Z", "2026-11-28T12:00:00Z", "2026-11-29T12:00:00Z", "2026-11-30T09:00:00Z"}},
		{name: "tz prefix", expr: "TZ=Asia/Kolkata 0 9 * * *", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T03:30:00Z"}},
		{name: "in qualifier", expr: "0 9 * * * in Asia/Kolkata", base: "2026-11-26T18:45:00Z", want: []string{"2026-11-27T03:30:00Z"}},
		{name: "overlap both fires twice", expr: "30 1 * * * dst shift overlap both", zone: "America/New_York", base: "2027-11-06T12:00:00Z", want: []string{"2027-11-07T05:30:00Z", "2027-11-07T06:30:00Z", "2027-11-08T06:30:00Z"}},
		{name: "gap skip", expr: "30 2 * * * dst skip", zone: "America/New_York", base: "2027-03-13T12:00:00Z", want: []string{"2027-03-15T06:30:00Z"}},
		{name: "sub-second base", expr: "* * * * *", base: "2026-11-26T18:45:00.5Z", want: []string{"2026-11-26T18:46:00Z"}},
		{name: "lord howe overlap first", expr: "45 1 * * *", zone: "Australia/Lord_Howe", base: "2027-04-03T12:00:00Z", want: []string{"2027-04-03T14:45:00Z", "2027-04-04T15:15:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			zone := tt.zone
			if zone == "" {
				zone = "UTC"
			}
			tr, err := Parse(tt.expr, Options{Location: mustLoad(t, zone)})
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			base, err := timeParseNano(tt.base)
			if err != nil {
				t.Fatal(err)
			}
			got := fires(t, tr, base, len(tt.want)+1)
			if len(got) > len(tt.want) && len(tt.want) > 0 {
				got = got[:len(tt.want)]
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		expr   string
		offset int
		msg    string // substring of Msg
		hint   string // substring of Hint; empty: any
	}{
		{name: "empty", expr: "  ", offset: 0, msg: "empty trigger"},
		{name: "four fields", expr: "* * * *", offset: 7, msg: "want 5 or 6 cron fields"},
		{name: "seven fields", expr: "* * * * * * 2027", offset: 12, msg: "got 7", hint: "year"},
		{name: "minute out of range", expr: "60 * * * *", offset: 0, msg: "minute 60 out of range; want 0-59"},
		{name: "hour out of range in list", expr: "0 1,24 * * *", offset: 4, msg: "hour 24 out of range; want 0-23"},
		{name: "month name prefix", expr: "0 0 * sept *", offset: 6, msg: `unknown month name "sept"`, hint: `did you mean "sep"?`},
		{name: "day name prefix", expr: "0 0 * * thurs", offset: 8, msg: `unknown day of week name "thurs"`, hint: `did you mean "thu"?`},
		{name: "day name typo", expr: "0 0 * * mon-fir", offset: 12, msg: `unknown day of week name "fir"`, hint: `did you mean "fri"?`},
		{name: "zero step", expr: "*/0 * * * *", offset: 2, msg: "bad step"},
		{name: "backwards range", expr: "0 5-1 * * *", offset: 2, msg: "goes backwards", hint: "5-23,0-1"},
		{name: "empty list item", expr: "0 0 1,,2 * *", offset: 6, msg: "empty item"},
		{name: "dom 0", expr: "0 0 0 * *", offset: 4, msg: "day of month 0 out of range; want 1-31"},
		{name: "L with dow", expr: "0 0 L * 1", offset: 8, msg: "day of week must be * or ?"},
		{name: "hash with dom", expr: "0 0 1 * 1#2", offset: 4, msg: "day of month must be * or ?"},
		{name: "hash 6", expr: "0 0 * * 1#6", offset: 10, msg: "k from 1 to 5"},
		{name: "L in list", expr: "0 0 1,L * *", offset: 4, msg: "cannot be used in a list"},
		{name: "never fires feb 30", expr: "0 0 30 2 *", offset: 4, msg: "never fires"},
		{name: "never fires apr 31", expr: "0 0 31 4 *", offset: 4, msg: "never fires"},
		{name: "never fires 30W feb", expr: "0 0 30W 2 *", offset: 4, msg: "never fires"},
		{name: "reboot", expr: "@reboot", offset: 0, msg: "@reboot is not supported", hint: "@once"},
		{name: "descriptor typo", expr: "@dayly", offset: 0, msg: "unknown descriptor", hint: `did you mean "@daily"?`},
		{name: "descriptor extra", expr: "@daily 5", offset: 7, msg: `unexpected "5"`},
		{name: "every zero", expr: "@every 0s", offset: 7, msg: "at least 1s"},
		{name: "every bad", expr: "@every soon", offset: 7, msg: "bad duration"},
		{name: "every phase too big", expr: "@every 90m/2h", offset: 11, msg: "less than the interval"},
		{name: "every missing", expr: "@every", offset: 6, msg: "needs a duration"},
		{name: "once bad time", expr: "@once 2027-01-04 25:00", offset: 17, msg: "bad time"},
		{name: "once in gap with skip", expr: "@once 2027-03-14 02:30 in America/New_York dst skip", offset: 6, msg: "never fires"},
		{name: "unknown zone", expr: "CRON_TZ=Europe/Lodnon 0 9 * * *", offset: 8, msg: `unknown time zone "Europe/Lodnon"`},
		{name: "two zones", expr: "CRON_TZ=UTC 0 9 * * * in Europe/London", offset: 25, msg: "one time zone"},
		{name: "bad dst", expr: "0 9 * * * dst shfit", offset: 14, msg: "unknown dst policy", hint: `did you mean "shift"?`},
		{name: "bad overlap", expr: "0 9 * * * dst skip overlap twice", offset: 27, msg: "want first or both"},
		{name: "unknown qualifier", expr: "0 9 * * * jiter 5m", offset: 10, msg: `unexpected "jiter"`},
		{name: "qualifier before last body", expr: "0 9 * * * in UTC; 0 10 * * *", offset: 10, msg: "after the last body"},
		{name: "every 7 minutes does not divide a day", expr: "every 7 minutes", offset: 0, msg: "does not divide a day", hint: "starting"},
		{name: "empty second body", expr: "0 9 * * *;", offset: 10, msg: "empty trigger body"},
		{name: "in without zone", expr: "0 9 * * * in", offset: 12, msg: "missing time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.expr, Options{})
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
