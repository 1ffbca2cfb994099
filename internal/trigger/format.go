package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// wallText formats a wall second (mod 24 h) as HH:MM or HH:MM:SS.
func wallText(sec int64) string {
	sec %= 86400
	if sec%60 != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%02d:%02d", sec/3600, sec/60%60)
}

// durText formats a cadence step in the grammar's units.
func durText(step int64) string {
	switch {
	case step == 3600:
		return "hour"
	case step%3600 == 0:
		return strconv.FormatInt(step/3600, 10) + " hours"
	case step == 60:
		return "minute"
	}
	return strconv.FormatInt(step/60, 10) + " minutes"
}

var weekOrder = [7]int{1, 2, 3, 4, 5, 6, 0} // Monday first

func maskText(m uint8) string {
	switch m {
	case allWeek:
		return "days"
	case 0x3e:
		return "weekdays"
	case 0x41:
		return "weekends"
	}
	var names []string
	for _, d := range weekOrder {
		if m&(1<<uint(d)) != 0 {
			names = append(names, dayNames[d])
		}
	}
	return strings.Join(names, ",")
}

// setPhrases returns a day set as day_set phrases whose intersection it is.
func setPhrases(d *daySet) []string {
	var out []string
	if d.mask != allWeek {
		out = append(out, maskText(d.mask))
	}
	switch d.biz {
	case bizOnly:
		out = append(out, "business days")
	case bizNon:
		out = append(out, "non-business days")
	}
	return out
}

func (o *ordDays) text() string {
	ords := make([]string, len(o.ords))
	for i, k := range o.ords {
		ords[i] = ordinalText(k)
	}
	what := "day"
	switch o.kind {
	case ordBusiness:
		what = "business day"
	case ordWeekday:
		what = maskText(o.wdays)
		if o.wdays == allWeek || o.wdays == 0x3e || o.wdays == 0x41 {
			// "1st weekdays" would not parse back; list the names.
			var names []string
			for _, d := range weekOrder {
				if o.wdays&(1<<uint(d)) != 0 {
					names = append(names, dayNames[d])
				}
			}
			what = strings.Join(names, ",")
		}
	}
	per := "month"
	switch o.per {
	case perQuarter:
		per = "quarter"
	case perYear:
		per = "year"
	default:
		if o.months != 0x1ffe {
			var names []string
			for m := 1; m <= 12; m++ {
				if o.months&(1<<uint(m)) != 0 {
					names = append(names, monthNames[m-1])
				}
			}
			per = strings.Join(names, ",")
		}
	}
	return strings.Join(ords, ",") + " " + what + " of " + per
}

// daysParts splits a rule's days into the leading day spec of an at
// clause and trailing "on" filters.
func daysParts(d daySelector) (lead string, filters []string) {
	switch x := d.(type) {
	case allDays:
		return "every day", nil
	case *daySet:
		ph := setPhrases(x)
		return "on " + ph[0], ph[1:]
	case *ordDays:
		return x.text(), nil
	case both:
		lead, _ = daysParts(x.a)
		_, f := daysParts(x.b)
		if s, ok := x.b.(*daySet); ok {
			f = setPhrases(s)
		}
		return lead, f
	}
	return "every day", nil
}

func timesText(t timeGen) string {
	switch x := t.(type) {
	case *listTimes:
		parts := make([]string, len(x.secs))
		for i, s := range x.secs {
			parts[i] = wallText(s)
		}
		return "at " + strings.Join(parts, ",")
	case *stepTimes:
		s := "every " + durText(x.step)
		switch {
		case x.a == 0 && x.b == 86400 && !x.closed:
			return s + " synchronized"
		case x.closed:
			return s + " from " + wallText(x.a) + " to " + wallText(x.b)
		}
		return s + " from " + wallText(x.a) + " until " + wallText(x.b)
	}
	return ""
}

// clauseText is a rule in canonical English, or its cron text.
func (r *rule) clauseText() string {
	if r.text != "" {
		return r.text
	}
	lead, filters := daysParts(r.days)
	var b strings.Builder
	if st, ok := r.times.(*stepTimes); ok {
		if r.elapsed {
			b.WriteString("every " + durText(st.step))
		} else {
			b.WriteString(timesText(st))
		}
		if lead != "every day" {
			b.WriteString(" " + lead)
		}
	} else {
		b.WriteString(lead + " " + timesText(r.times))
	}
	for _, f := range filters {
		b.WriteString(" on " + f)
	}
	return b.String()
}

func (g *grid) text() string {
	if g.english {
		s := "every " + durText(g.every)
		if g.days != nil {
			lead, filters := daysParts(g.days)
			s += " " + lead
			for _, f := range filters {
				s += " on " + f
			}
		}
		return s
	}
	s := "@every " + (time.Duration(g.every) * time.Second).String()
	if g.phase != 0 {
		s += "/" + (time.Duration(g.phase) * time.Second).String()
	}
	return s
}

// String returns the spec in a canonical form that Parse, with the same
// Options, compiles to the same spec: every clause spelled out with its
// own window and days, separated by "; ", then the qualifiers. Fuzzing
// checks parse → String → parse.
func (s *Spec) String() string {
	var parts []string
	for i := range s.rules {
		parts = append(parts, s.rules[i].clauseText())
	}
	for i := range s.grids {
		parts = append(parts, s.grids[i].text())
	}
	for _, u := range s.once {
		parts = append(parts, "@once "+time.Unix(u, 0).UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		// A spec of one-shots that resolve to nothing cannot occur (Parse
		// refuses it); keep String total anyway.
		return "@once 0001-01-01T00:00:00Z"
	}
	out := strings.Join(parts, "; ")
	return out + s.qualifierText()
}

func (s *Spec) qualifierText() string {
	var b strings.Builder
	if s.zoneSet {
		b.WriteString(" in " + s.loc.String())
	}
	if names := s.Calendars(); names != nil {
		b.WriteString(" using " + strings.Join(names, " + "))
	}
	if s.adjust != adjNone {
		b.WriteString(" adjust " + s.adjust.String())
	}
	if s.exceptH {
		b.WriteString(" except holidays")
	}
	if len(s.exceptD) > 0 {
		ds := make([]string, len(s.exceptD))
		for i, d := range s.exceptD {
			ds[i] = calendar.DateOfDays(d).String()
		}
		b.WriteString(" except on " + strings.Join(ds, ","))
	}
	// Bounds in UTC: an RFC 3339 offset has no seconds, and local mean
	// time offsets do (-04:56:02).
	if s.hasStart {
		b.WriteString(" starting " + time.Unix(s.start, 0).UTC().Format(time.RFC3339))
	}
	if s.hasEnd {
		b.WriteString(" ending " + time.Unix(s.end, 0).UTC().Format(time.RFC3339))
	}
	if s.jitter != 0 {
		b.WriteString(" jitter " + (time.Duration(s.jitter) * time.Second).String())
	}
	if s.dstSet || s.dst != (calendar.DSTPolicy{}) {
		b.WriteString(" dst " + dstText(s.dst))
	}
	return b.String()
}

func dstText(p calendar.DSTPolicy) string {
	s := "shift"
	if p.Gap == calendar.GapSkip {
		s = "skip"
	}
	if p.Overlap == calendar.OverlapBoth {
		return s + " overlap both"
	}
	return s + " overlap first"
}

// Explain describes the spec as Parse understood it, one rule a line:
// its days, its window or times (with the first and last wall time and
// how many a day), then the spec-level settings. "talon calendar
// --explain" prints it.
func (s *Spec) Explain() string {
	var b strings.Builder
	n := 0
	for i := range s.rules {
		r := &s.rules[i]
		n++
		fmt.Fprintf(&b, "rule %d: ", n)
		if r.text != "" {
			fmt.Fprintf(&b, "cron %q\n", r.text)
			continue
		}
		lead, filters := daysParts(r.days)
		days := lead
		if strings.HasPrefix(days, "on ") {
			days = days[3:]
		}
		for _, f := range filters {
			days += " that are " + f
		}
		switch t := r.times.(type) {
		case *stepTimes:
			win := "[" + wallText(t.a) + ", " + wallText(t.b)
			if t.closed {
				win += "]"
			} else {
				win += ")"
			}
			if t.b > 86400 {
				win += " ending the next day"
			}
			c := t.count()
			last := t.a + (c-1)*t.step
			fmt.Fprintf(&b, "%s, every %s in %s: %s", days, durText(t.step), win, wallText(t.a))
			if c > 2 {
				fmt.Fprintf(&b, ", %s, …", wallText(t.a+t.step))
			}
			if c > 1 {
				fmt.Fprintf(&b, ", %s", wallText(last))
			}
			fmt.Fprintf(&b, " (%d a day)\n", c)
		default:
			fmt.Fprintf(&b, "%s, %s\n", days, timesText(r.times))
		}
	}
	for i := range s.grids {
		g := &s.grids[i]
		n++
		fmt.Fprintf(&b, "rule %d: elapsed time, every %s", n, time.Duration(g.every)*time.Second)
		if s.hasStart && g.english {
			fmt.Fprintf(&b, " from %s", time.Unix(s.start, 0).In(s.loc).Format(time.RFC3339))
		} else {
			fmt.Fprintf(&b, " from the Unix epoch + %s", time.Duration(g.phase)*time.Second)
		}
		if g.days != nil {
			lead, filters := daysParts(g.days)
			fmt.Fprintf(&b, ", on local dates %s", strings.TrimPrefix(lead, "on "))
			for _, f := range filters {
				fmt.Fprintf(&b, " that are %s", f)
			}
		}
		b.WriteString(", ignoring DST\n")
	}
	for _, u := range s.once {
		n++
		fmt.Fprintf(&b, "rule %d: once at %s\n", n, time.Unix(u, 0).In(s.loc).Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "zone: %s; dst: %s", s.loc, dstText(s.dst))
	cals := "weekends-only (Saturday and Sunday off, no holidays)"
	if names := s.Calendars(); names != nil {
		cals = strings.Join(names, " + ") + " (a business day in every one)"
	}
	fmt.Fprintf(&b, "; calendar: %s", cals)
	if s.adjust != adjNone {
		fmt.Fprintf(&b, "; adjust %s", s.adjust)
	}
	if q := strings.TrimSpace(s.boundsText()); q != "" {
		b.WriteString("; " + q)
	}
	b.WriteString("\ncanonical: " + s.String())
	return b.String()
}

func (s *Spec) boundsText() string {
	var b strings.Builder
	if s.exceptH {
		b.WriteString(" except holidays")
	}
	if len(s.exceptD) > 0 {
		b.WriteString(" except on")
		for i, d := range s.exceptD {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(" " + calendar.DateOfDays(d).String())
		}
	}
	if s.hasStart {
		b.WriteString(" starting " + time.Unix(s.start, 0).In(s.loc).Format(time.RFC3339))
	}
	if s.hasEnd {
		b.WriteString(" ending " + time.Unix(s.end, 0).In(s.loc).Format(time.RFC3339))
	}
	if s.jitter != 0 {
		fmt.Fprintf(&b, " jitter up to %s (deterministic per trigger ID and fire, before the next fire)", time.Duration(s.jitter)*time.Second)
	}
	return b.String()
}
