// Package trigger compiles time-trigger expressions into a Spec whose Next
// is a pure function of the spec, its business calendars, tzdata and the
// instant asked about. Three front ends (cron, @ descriptors and the
// English form) compile to one model: a union of rules, each
// a date selector × a time-of-day generator, plus elapsed-time grids and
// one-shot instants, under spec-level settings (zone, calendars, holiday
// adjustment, exclusions, bounds, jitter, DST policy).
//
// # Grammar
//
//	spec       = [ tz_prefix ] body { ";" body } { qualifier }
//	tz_prefix  = ( "CRON_TZ=" | "TZ=" ) ZONE             (case-insensitive)
//	body       = cron | descriptor | english
//	cron       = [ sec ] min hour dom month dow          (5 fields, or 6 with seconds first)
//	field      = item { "," item }
//	item       = ( "*" | "?" | value [ "-" value ] ) [ "/" step ]
//	dom        = field | "L" | "L-" n | "LW" | n "W"     (Quartz)
//	dow        = field | value "L" | value "#" k         (Quartz)
//	descriptor = "@yearly" | "@annually" | "@quarterly" | "@monthly" | "@weekly"
//	           | "@daily" | "@midnight" | "@hourly"
//	           | "@every" DURATION [ "/" DURATION ]
//	           | "@once" DATETIME
//
//	english    = [ [ "on" ] day_set ":" ] clause { clause_sep clause }
//	clause_sep = ";" | ","                               (the comma rule, below)
//	clause     = cadence [ window ] { day_filter }
//	           | [ day_spec ] [ "at" ] time_list { day_filter }
//	           | day_spec { day_filter }                 (at 00:00)
//	           | ( "daily" | "weekly" [ "on" day_names ] | "monthly" | "quarterly"
//	             | "yearly" | "annually" ) [ "at" time_list ] { day_filter }
//	           | "once" [ "at" ] ( DATETIME | DATE TIME )
//	cadence    = "every" INT unit | "every" ( "minute" | "hour" ) | "hourly" | "minutely"
//	unit       = "minutes" | "minute" | "mins" | "min" | "hours" | "hour" | "hrs" | "hr"
//	window     = "between" TIME ( "-" | "and" ) TIME                 [a, b)
//	           | "from" TIME ( "to" | "through" ) TIME               [a, b]
//	           | "from" TIME ( "until" | "till" ) TIME               [a, b)
//	           | ( "until" | "till" ) TIME                           [previous clause's end, b)
//	           | "synchronized"                                      [00:00, 24:00)
//	day_filter = "on" day_set                            (this clause only; several intersect)
//	day_spec   = "every" day_set | [ "on" ] day_set
//	           | ordinals ( day_names | "day" | "business" "day" ) "of" period_sel
//	           | monthdays "of" period_sel               (1,15 of month; 15th of month)
//	ordinals   = ordinal { "," ordinal }                 (ordinal: ORD [ "last" ] | "last")
//	monthdays  = ( INT | ORD ) { "," ( INT | ORD ) }
//	period_sel = "month" | "quarter" | "year" | month_names | ordinals "month" "of" "quarter"
//	day_set    = "day" | "days" | "weekdays" | "weekends" | "business" "days"
//	           | "non-business" "days" | day_names
//	day_names  = DAY [ "-" DAY ] { "," DAY [ "-" DAY ] } (mon-fri, sat,sun; ranges may wrap)
//	time_list  = TIME { "," TIME } [ "and" TIME ]
//
//	qualifier  = "in" ZONE
//	           | "using" CALNAME { "+" CALNAME }
//	           | "adjust" ( "following" | "preceding" | "modified following"
//	                      | "modified preceding" | "skip" | "none" )
//	           | "except" ( "holidays" | "on" DATE { "," DATE } )
//	           | "starting" ( DATETIME | DATE ) | "ending" ( DATETIME | DATE )
//	           | "jitter" DURATION
//	           | "dst" ( "shift" | "skip" ) [ "overlap" ( "first" | "both" ) ]
//
// Tokens: matching is case-insensitive. ORD is 1st, 2nd, 3rd, 15th … or
// first…fifth. TIME is H[:MM[:SS]][am|pm] (also "9 am"), noon or midnight;
// without am/pm it is 24-hour, and a bare hour (7) is a time. DATE is
// YYYY-MM-DD; DATETIME is RFC 3339, or a DATE with a TIME (read in the
// spec's zone). DURATION is a Go duration that may start with days (90m,
// 1h30m, 1d). DAY is mon, monday or mondays (also tues, thur, thurs);
// MONTH is jan or january (also sept). "-", ",", ";", ":" and "+" are
// tokens of their own except inside dates and times.
//
// A body is cron when it starts with a digit, "*" or "?" and has no
// English word, time (09:00, 10am) or ordinal (1st); otherwise it is
// English. Qualifiers follow the last body and apply to all of them.
//
// # English
//
// The comma rule: a "," separates clauses only when it is followed by
// whitespace and then a clause word (every hourly minutely daily weekly
// monthly quarterly yearly annually at on once last first second third
// fourth fifth ORD business weekdays weekends); every other comma
// separates list items. So "1st,third mon of sep,oct,nov 17:00" is one
// clause, "at 09:00, 12:00 and 17:00" is a time list, and "1st, third mon"
// is an error whose hint says to drop the space.
//
// The meridiem rule: in a window "a-b" with am/pm only on b (7-10am,
// 4-5pm), a takes b's; if that puts a after b it takes the other one, so
// 10-2am is 22:00–02:00 and 11-1pm is 11:00–13:00. "between 10-10am" is an
// empty window, an error.
//
// Windows: "between" and "until" exclude their end, "from … to" includes
// it (as in App Engine). "until T" starts where the previous clause's
// window ended, or at 00:00. A window whose end is not after its start
// crosses midnight: [22:00 on D, 02:00 on D+1), and D (the start date) is
// the date day filters and periods use. Steps are anchored at the window
// start and counted in wall-clock time: "every 25 minutes from 09:00 until
// 11:00" is 09:00, 09:25, 09:50, 10:15, 10:40. Without a window a cadence
// covers the whole day and its step must divide 24 hours, unless the spec
// has "starting X": then it is an elapsed-time cadence, X + k·step, which
// ignores DST. So the seed
//
//	every 15 minutes between 7-10am, hourly until 4pm, every 5 minutes between 4-5pm
//
// is three rules: 07:00–09:45 every 15 minutes, 10:00–15:00 hourly and
// 16:00–16:55 every 5 minutes, 30 fires a day (Spec.Explain prints them).
//
// Day scope: "on weekdays: …" applies to every clause (also across ";"),
// a trailing "on DAYS" to its own clause. "weekdays" are Mon–Fri whatever
// the holidays; "business days" follow the calendars. "weekly" is Monday
// (ISO), unlike cron's @weekly (Sunday); "monthly", "quarterly" and
// "yearly" are the first day of their period.
//
// Date selectors: "1st,third mon of sep,oct,nov" is the Nth occurrence of
// each weekday in each listed month; "of quarter" and "of year" count in
// the whole quarter or year (so "last friday of quarter" is in Mar, Jun,
// Sep or Dec); "first month of quarter" is Jan, Apr, Jul and Oct; "2nd last
// friday" counts from the end. A day a month does not have (31st of
// April) does not fire; a selector that can never fire (31st day of feb,
// 6th monday of month) is a parse error. "Nth business day of
// month|quarter|year" counts business days from the period's start ("last
// business day" from its end); a period with fewer has no fire.
//
// # Calendars
//
// "using A + B" names calendars of Options.Calendars (the schedule's
// calendars: section); a date is a business day only if it is one in
// every named calendar. Without using, the calendar is "weekends-only"
// (Saturday and Sunday off, no holidays). Calendars are read at each Next,
// so editing their holiday lists changes future fires without re-parsing.
//
// "adjust" moves the dates that rules select when they are not business
// days: following, preceding, modified following/preceding (not leaving
// the month), skip (no fire) or none (the default). Dates that adjust onto
// the same day fire once. "except holidays" drops holidays of the
// calendars (not weekends) and "except on DATE,…" drops listed dates; both
// apply after adjustment. A fire's business date (Fire.Date, which decides
// its period) is the date before adjustment: "last day of month adjust
// following" fires on 1 February for January's period.
//
// Asking past a calendar's through date is an error, never a silent "no
// fire": NextFire returns an error wrapping calendar.ErrNotCovered (and
// Next returns the zero time) whenever the answer depends on a date the
// calendar does not cover. A fire of another rule that comes first is
// still returned, and dates after "ending" never fail.
//
// # Bounds and jitter
//
// "starting" and "ending" keep nominal instants within [start, end], both
// inclusive; "ending DATE" includes that whole date. "jitter D" (whole
// seconds, from 1s to 24h) delays each fire by hash(Options.ID, nominal
// instant) mod D, capped to stay before the next nominal instant. Jitter never changes the nominal instant, the
// business date or the period: NextFire returns both Fire.At (when to
// start) and Fire.Nominal (for run keys and periods).
//
// # Cron
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
// Days follow the Vixie rule: if the day-of-month or the day-of-week field starts with "*" or "?", a
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
// The policy is the dst qualifier, else Options.DST. The default policy, "dst shift overlap first", fires a gap time at the
// wall time read with the offset before the gap (02:30 becomes 03:30 EDT;
// 02:15 in Lord Howe becomes 02:45), and an overlap time once, at the
// earlier instant: so a daily job fires exactly once on every date. "dst
// skip" drops gap times and "overlap both" fires both instants, which
// together equal robfig. Instants that several wall times resolve to fire
// once. @every and RFC 3339 @once times ignore DST.
//
// # Next
//
// Next(t) is the smallest fire instant strictly after t; NextFire also
// gives the nominal instant, the business date and calendar errors. It
// walks candidate dates from t's local date minus one (ordinal selectors
// jump a whole month, quarter or year at a time), asks each date's rules
// for their wall times (cron bitsets, time lists, window steps by
// arithmetic), and resolves them (calendar.Resolve near a
// transition, plain offset arithmetic elsewhere); it never steps minute by
// minute and never calls time.Date. It looks at most 28 years ahead (one
// full cycle of dates and weekdays, so any spec that parses is found) and
// returns the zero time past that. Next does not allocate.
//
// # Errors
//
// Parse returns *Error with the byte Offset of the problem in the
// expression, a message saying what was expected ("minute 60 out of range;
// want 0-59", "unknown unit \"minuts\"; want minutes or hours") and, for
// near misses, a Hint ("did you mean \"minutes\"?"). Error() joins them:
// unknown unit "minuts"; want minutes or hours (did you mean "minutes"?).
//
// # Printing
//
// Spec.String prints a canonical form that parses back to the same spec
// (every clause with its own window, days and times, separated by "; ",
// then the qualifiers); Spec.Explain prints the rules as understood, one a
// line, with their windows, first and last times and count per day.
package trigger
