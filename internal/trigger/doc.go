// Package trigger compiles time-trigger expressions into a Spec whose Next
// is a pure function of the spec, tzdata and the instant asked about. This
// step accepts cron and @ descriptors; the English form of TRIGGERS.md will
// compile to the same model (a union of rules, each a date selector × a
// time-of-day generator, plus elapsed-time grids and one-shot instants).
//
// # Grammar
//
//	spec       = [ tz_prefix ] body { ";" body } { qualifier }
//	tz_prefix  = ( "CRON_TZ=" | "TZ=" ) ZONE             (case-insensitive)
//	body       = cron | descriptor
//	cron       = [ sec ] min hour dom month dow          (5 fields, or 6 with seconds first)
//	field      = item { "," item }
//	item       = ( "*" | "?" | value [ "-" value ] ) [ "/" step ]
//	dom        = field | "L" | "L-" n | "LW" | n "W"     (Quartz)
//	dow        = field | value "L" | value "#" k         (Quartz)
//	descriptor = "@yearly" | "@annually" | "@quarterly" | "@monthly" | "@weekly"
//	           | "@daily" | "@midnight" | "@hourly"
//	           | "@every" DURATION [ "/" DURATION ]
//	           | "@once" DATETIME
//	qualifier  = "in" ZONE | "dst" ( "shift" | "skip" ) [ "overlap" ( "first" | "both" ) ]
//
// Fields and ranges:
//
//	field         values                  names
//	second        0-59
//	minute        0-59
//	hour          0-23
//	day of month  1-31
//	month         1-12                    jan-dec, january-december
//	day of week   0-7 (0 and 7: Sunday)   sun-sat, sunday-saturday
//
// Names are case-insensitive and may form ranges (MON-FRI). A day-of-week
// range ending on Sunday reads Sunday as 7 (FRI-SUN is 5-7). "?" equals
// "*". "a-b/s" takes every s-th value from a to b, "*/s" from the field's
// minimum, and "n/s" runs from n to the field's maximum (Saturday for day
// of week). A range that goes backwards (5-1) is an error.
//
// # Days: the Vixie rule
//
// If the day-of-month or the day-of-week field starts with "*" or "?", a
// date must match both (AND); otherwise it must match either (OR). So
// "0 12 */2 * 1" is odd-numbered days that are Mondays (robfig differs),
// and "0 12 1-7 * 1" is the first seven days plus every Monday, not the
// first Monday: write "0 12 ? * 1#1" for that.
//
// Quartz tokens need the other day field to be "*" or "?":
//
//	L     last day of the month          L-3   three days before the last day
//	LW    last weekday (Mon-Fri)          15W   weekday nearest the 15th, never leaving the month
//	5L    last Friday of the month       1#2   second Monday of the month (k = 1..5)
//
// A day a month does not have (31 in April) does not fire; it is not
// moved. A spec whose days can never match (0 0 30 2 *) is a parse error.
//
// # Descriptors
//
// @yearly and @annually are "0 0 1 1 *"; @quarterly is "0 0 1 1,4,7,10 *";
// @monthly is "0 0 1 * *"; @weekly is "0 0 * * 0" (Sunday, as in cron,
// unlike the English "weekly", which is Monday); @daily and @midnight are
// "0 0 * * *"; @hourly is "0 * * * *".
//
// "@every D[/P]" fires at the Unix epoch + k·D + P for every integer k: a
// fixed grid of instants, unaffected by zones and DST, and the same no
// matter when Next is asked (robfig's @every counts from the caller's time
// instead). D is a Go duration that may start with a day count (90m, 1h30m,
// 1d, 1d12h), whole seconds and at least 1s; the phase P is less than D.
//
// "@once DATETIME" fires once: an RFC 3339 time (2027-01-04T09:00:00Z), or a
// wall time in the spec's zone written as 2027-01-04T09:00,
// "2027-01-04 09:00[:SS]" or "2027-01-04 9am" (also noon, midnight).
//
// @reboot is rejected: Talon fires on time, not when a machine starts.
//
// # Zones
//
// Wall times are read in one zone: the CRON_TZ=/TZ= prefix, or the "in
// ZONE" qualifier, or else Options.Location (the job's zone), or UTC.
// Naming two zones is an error; use two triggers.
//
// # DST
//
// A wall time may name no instant (spring gap) or two (autumn overlap).
// The default policy, "dst shift overlap first", fires a gap time at the
// wall time read with the offset before the gap (02:30 becomes 03:30 EDT;
// 02:15 in Lord Howe becomes 02:45), and an overlap time once, at the
// earlier instant: so a daily job fires exactly once on every date. "dst
// skip" drops gap times and "overlap both" fires both instants, which
// together equal robfig. Instants that several wall times resolve to fire
// once. @every and RFC 3339 @once times ignore DST.
//
// # Next
//
// Next(t) is the smallest fire instant strictly after t. It walks candidate
// dates from t's local date minus one, asks each date's wall times of the
// time-of-day bitsets, and resolves them (calendar.Resolve near a
// transition, plain offset arithmetic elsewhere); it never steps minute by
// minute and never calls time.Date. It looks at most 28 years ahead (one
// full cycle of dates and weekdays, so any spec that parses is found) and
// returns the zero time past that. Next does not allocate.
//
// # Errors
//
// Parse returns *Error with the byte Offset of the problem in the
// expression, a message saying what was expected ("minute 60 out of range;
// want 0-59") and, for near misses, a Hint ("did you mean \"sep\"?").
package trigger
