package trigger

import (
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// cronTimes is a cron time-of-day set as bitsets: bit n of sec, min and hour
// means that value is in the field.
type cronTimes struct {
	sec, min uint64
	hour     uint32
}

// nextBit returns the smallest set bit of m at or above from, or -1.
func nextBit(m uint64, from int64) int64 {
	if from >= 64 {
		return -1
	}
	m >>= uint(from)
	if m == 0 {
		return -1
	}
	return from + int64(bits.TrailingZeros64(m))
}

func (c *cronTimes) next(x int64) (int64, bool) {
	if x >= 86400 {
		return 0, false
	}
	h, m, s := x/3600, x/60%60, x%60
	for h < 24 {
		if nh := nextBit(uint64(c.hour), h); nh != h {
			if nh < 0 {
				return 0, false
			}
			h, m, s = nh, 0, 0
		}
		nm := nextBit(c.min, m)
		if nm < 0 {
			h, m, s = h+1, 0, 0
			continue
		}
		if nm != m {
			m, s = nm, 0
		}
		ns := nextBit(c.sec, s)
		if ns < 0 {
			m, s = m+1, 0
			if m == 60 {
				h, m = h+1, 0
			}
			continue
		}
		return h*3600 + m*60 + ns, true
	}
	return 0, false
}

// Quartz day-of-month and day-of-week tokens.
const (
	domPlain   = iota
	domLast    // L or L-n: n days before the last day
	domLastWk  // LW: last weekday (Mon–Fri) of the month
	domNearest // nW: weekday nearest day n, within the month
)

const (
	dowPlain = iota
	dowLast  // dL: last weekday d of the month
	dowNth   // d#k: k-th weekday d of the month
)

// cronDays is a cron date selector: month, day of month and day of week,
// combined by the Vixie rule (AND if either day field starts with * or ?,
// else OR), plus Quartz's L, W and # tokens.
type cronDays struct {
	months uint16 // bits 1..12
	dom    uint32 // bits 1..31
	dow    uint8  // bits 0..6, Sunday = 0
	and    bool

	domKind int
	domN    int
	dowKind int
	dowDay  time.Weekday
	dowK    int
}

func (c *cronDays) matchDOM(y int, m time.Month, day int, wd time.Weekday) bool {
	switch c.domKind {
	case domLast:
		return day == calendar.DaysIn(y, m)-c.domN
	case domLastWk:
		last := calendar.DaysIn(y, m)
		lwd := time.Weekday((int(wd) + last - day) % 7)
		switch lwd {
		case time.Saturday:
			last--
		case time.Sunday:
			last -= 2
		}
		return day == last
	case domNearest:
		n, last := c.domN, calendar.DaysIn(y, m)
		if n > last {
			return false
		}
		nwd := time.Weekday(((int(wd)+n-day)%7 + 7) % 7)
		target := n
		switch nwd {
		case time.Saturday:
			target = n - 1
			if target < 1 { // W never leaves the month: Sat 1st → Mon 3rd
				target = n + 2
			}
		case time.Sunday:
			target = n + 1
			if target > last { // Sun last → Fri before
				target = n - 2
			}
		}
		return day == target
	}
	return c.dom&(1<<uint(day)) != 0
}

func (c *cronDays) matchDOW(y int, m time.Month, day int, wd time.Weekday) bool {
	switch c.dowKind {
	case dowLast:
		return wd == c.dowDay && day+7 > calendar.DaysIn(y, m)
	case dowNth:
		return wd == c.dowDay && (day-1)/7+1 == c.dowK
	}
	return c.dow&(1<<uint(wd)) != 0
}

func (c *cronDays) nextDay(n, limit int) int {
	d := calendar.DateOfDays(n)
	y, m, day := d.Year, d.Month, d.Day
	wd := d.Weekday()
	for n <= limit {
		dim := calendar.DaysIn(y, m)
		if c.months&(1<<uint(m)) == 0 {
			// Jump to the 1st of the next month.
			skip := dim - day + 1
			n += skip
			wd = time.Weekday((int(wd) + skip) % 7)
			day = 1
			if m++; m > time.December {
				m, y = time.January, y+1
			}
			continue
		}
		dm := c.matchDOM(y, m, day, wd)
		var ok bool
		if c.and {
			ok = dm && c.matchDOW(y, m, day, wd)
		} else {
			ok = dm || c.matchDOW(y, m, day, wd)
		}
		if ok {
			return n
		}
		n++
		wd = (wd + 1) % 7
		if day++; day > dim {
			day = 1
			if m++; m > time.December {
				m, y = time.January, y+1
			}
		}
	}
	return limit + 1
}

// neverFires reports whether the selector matches no date at all. One
// 28-year cycle holds every (date, weekday) pair, leap days included.
func (c *cronDays) neverFires() bool {
	start := calendar.Date{Year: 2001, Month: time.January, Day: 1}.Days()
	return c.nextDay(start, start+walkDays) > start+walkDays
}

// fieldDef describes one cron field.
type fieldDef struct {
	name     string
	min, max int
	names    []string // index = value - nameBase
	nameBase int
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	fullMonths = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
	fullDays   = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

	secondField = fieldDef{name: "second", min: 0, max: 59}
	minuteField = fieldDef{name: "minute", min: 0, max: 59}
	hourField   = fieldDef{name: "hour", min: 0, max: 23}
	domField    = fieldDef{name: "day of month", min: 1, max: 31}
	monthField  = fieldDef{name: "month", min: 1, max: 12, names: monthNames, nameBase: 1}
	dowField    = fieldDef{name: "day of week", min: 0, max: 7, names: dayNames, nameBase: 0}
)

// field is one whitespace-separated token of the expression.
type field struct {
	text string
	off  int
}

func isStar(f field) bool { return f.text != "" && (f.text[0] == '*' || f.text[0] == '?') }

// parseCron compiles 5 or 6 cron fields (seconds first when 6).
func parseCron(fs []field) (rule, error) {
	var ct cronTimes
	if len(fs) == 6 {
		b, err := parseField(fs[0], secondField)
		if err != nil {
			return rule{}, err
		}
		ct.sec = b
		fs = fs[1:]
	} else {
		ct.sec = 1
	}
	mb, err := parseField(fs[0], minuteField)
	if err != nil {
		return rule{}, err
	}
	hb, err := parseField(fs[1], hourField)
	if err != nil {
		return rule{}, err
	}
	ct.min, ct.hour = mb, uint32(hb)
	cd := &cronDays{}
	monb, err := parseField(fs[3], monthField)
	if err != nil {
		return rule{}, err
	}
	cd.months = uint16(monb)
	domF, dowF := fs[2], fs[4]
	cd.and = isStar(domF) || isStar(dowF)
	if q, err := parseQuartzDOM(domF, dowF, cd); err != nil {
		return rule{}, err
	} else if !q {
		b, err := parseField(domF, domField)
		if err != nil {
			return rule{}, err
		}
		cd.dom = uint32(b)
	}
	if q, err := parseQuartzDOW(dowF, domF, cd); err != nil {
		return rule{}, err
	} else if !q {
		b, err := parseField(dowF, dowField)
		if err != nil {
			return rule{}, err
		}
		if b&(1<<7) != 0 { // Vixie: 7 is Sunday too
			b = b&^(1<<7) | 1
		}
		cd.dow = uint8(b)
	}
	if cd.neverFires() {
		return rule{}, &Error{Offset: domF.off, Msg: "spec never fires: no date matches day of month " + quote(domF.text) + ", month " + quote(fs[3].text) + " and day of week " + quote(dowF.text),
			Hint: "a day that a month does not have is not moved; use L for the last day of the month"}
	}
	return rule{days: cd, times: &ct}, nil
}

// parseField parses a list of items into a bitset (bit n = value n).
func parseField(f field, def fieldDef) (uint64, error) {
	if f.text == "" {
		return 0, &Error{Offset: f.off, Msg: "empty " + def.name + " field"}
	}
	var set uint64
	off := f.off
	for _, item := range strings.Split(f.text, ",") {
		b, err := parseItem(item, off, def)
		if err != nil {
			return 0, err
		}
		set |= b
		off += len(item) + 1
	}
	return set, nil
}

func parseItem(item string, off int, def fieldDef) (uint64, error) {
	if item == "" {
		return 0, &Error{Offset: off, Msg: "empty item in " + def.name + " list", Hint: "write lists without spaces or empty items, such as 1,15"}
	}
	rng, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n <= 0 || strings.ContainsAny(stepText, "+-") {
			return 0, &Error{Offset: off + len(rng) + 1, Msg: "bad step " + quote(stepText) + " in " + def.name + " field; want a positive number, such as */15"}
		}
		step = n
	}
	lo, hi := def.min, def.max
	if def.name == "day of week" {
		hi = 6 // * means Sunday once, not twice
	}
	switch {
	case rng == "*" || rng == "?":
	case rng == "":
		return 0, &Error{Offset: off, Msg: "missing " + def.name + " before \"/\"; want *, a value or a range"}
	default:
		a, b, isRange := strings.Cut(rng, "-")
		v, err := parseValue(a, off, def)
		if err != nil {
			return 0, err
		}
		lo = v
		if isRange {
			w, err := parseValue(b, off+len(a)+1, def)
			if err != nil {
				return 0, err
			}
			if def.name == "day of week" && w == 0 && v > 0 {
				w = 7 // FRI-SUN reads as 5-7
			}
			if w < v {
				return 0, &Error{Offset: off, Msg: def.name + " range " + rng + " goes backwards; want start ≤ end", Hint: "split it into two ranges, such as " + strconv.Itoa(v) + "-" + strconv.Itoa(def.max) + "," + strconv.Itoa(def.min) + "-" + strconv.Itoa(w)}
			}
			hi = w
		} else if !hasStep {
			hi = v
		}
		// n/s runs to the field's end; for day of week that is Saturday,
		// as in robfig, so 1/2 does not add Sunday through 7.
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << uint(v)
	}
	return set, nil
}

// parseValue parses a number or a name of a field.
func parseValue(s string, off int, def fieldDef) (int, error) {
	if s == "" {
		return 0, &Error{Offset: off, Msg: "missing " + def.name + " value; want " + rangeText(def)}
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, &Error{Offset: off, Msg: "bad " + def.name + " " + quote(s) + "; want " + rangeText(def)}
		}
		if n < def.min || n > def.max {
			return 0, &Error{Offset: off, Msg: def.name + " " + s + " out of range; want " + rangeText(def)}
		}
		return n, nil
	}
	if def.names != nil {
		l := strings.ToLower(s)
		full := fullMonths
		if def.nameBase == 0 {
			full = fullDays
		}
		for i, n := range def.names {
			if l == n || l == full[i] {
				return i + def.nameBase, nil
			}
		}
		return 0, &Error{Offset: off, Msg: "unknown " + def.name + " name " + quote(s) + "; want " + rangeText(def), Hint: suggest(l, def.names, full)}
	}
	return 0, &Error{Offset: off, Msg: "bad " + def.name + " " + quote(s) + "; want " + rangeText(def), Hint: quartzHint(s, def)}
}

func rangeText(def fieldDef) string {
	s := strconv.Itoa(def.min) + "-" + strconv.Itoa(def.max)
	if def.names != nil {
		s += " or a name (" + def.names[0] + "-" + def.names[len(def.names)-1] + ")"
	}
	return s
}

func quartzHint(s string, def fieldDef) string {
	if def.name == "day of month" && strings.ContainsAny(s, "LlWw") {
		return "Quartz L and W must be the whole field, such as L, L-3, LW or 15W, with * or ? as day of week"
	}
	return ""
}

// parseQuartzDOM handles L, L-n, LW and nW. It reports whether the field
// was a Quartz token.
func parseQuartzDOM(f, other field, cd *cronDays) (bool, error) {
	t := strings.ToUpper(f.text)
	if !strings.ContainsAny(t, "LW") {
		return false, nil
	}
	if strings.Contains(t, ",") || strings.Contains(t, "/") {
		return false, &Error{Offset: f.off, Msg: "Quartz L and W cannot be used in a list or with a step", Hint: "use one token: L, L-3, LW or 15W"}
	}
	switch {
	case t == "L":
		cd.domKind = domLast
	case t == "LW":
		cd.domKind = domLastWk
	case strings.HasPrefix(t, "L-"):
		n, err := strconv.Atoi(t[2:])
		if err != nil || n < 0 || n > 30 || strings.ContainsAny(t[2:], "+-") {
			return false, &Error{Offset: f.off + 2, Msg: "bad offset in " + quote(f.text) + "; want L-n with n from 0 to 30"}
		}
		cd.domKind, cd.domN = domLast, n
	case strings.HasSuffix(t, "W"):
		n, err := strconv.Atoi(t[:len(t)-1])
		if err != nil || n < 1 || n > 31 || strings.ContainsAny(t[:len(t)-1], "+-") {
			return false, &Error{Offset: f.off, Msg: "bad day in " + quote(f.text) + "; want nW with n from 1 to 31, such as 15W"}
		}
		cd.domKind, cd.domN = domNearest, n
	default:
		return false, &Error{Offset: f.off, Msg: "bad day of month " + quote(f.text) + "; want 1-31, L, L-n, LW or nW"}
	}
	if other.text != "*" && other.text != "?" {
		return false, &Error{Offset: other.off, Msg: "day of week must be * or ? when day of month is " + f.text, Hint: "Quartz L and W combine with no day-of-week restriction"}
	}
	return true, nil
}

// parseQuartzDOW handles dL and d#k. It reports whether the field was a
// Quartz token.
func parseQuartzDOW(f, other field, cd *cronDays) (bool, error) {
	t := f.text
	var kind int
	var day, rest string
	if i := strings.IndexByte(t, '#'); i >= 0 {
		kind, day, rest = dowNth, t[:i], t[i+1:]
	} else if len(t) > 1 && (t[len(t)-1] == 'L' || t[len(t)-1] == 'l') && !strings.ContainsAny(t, ",-/") {
		kind, day = dowLast, t[:len(t)-1]
	} else {
		return false, nil
	}
	if strings.ContainsAny(day, ",-/*?") {
		return false, &Error{Offset: f.off, Msg: "Quartz # and L cannot be used in a list, range or step", Hint: "use one token, such as 1#2 or 5L"}
	}
	v, err := parseValue(day, f.off, dowField)
	if err != nil {
		return false, err
	}
	cd.dowKind, cd.dowDay = kind, time.Weekday(v%7)
	if kind == dowNth {
		k, err := strconv.Atoi(rest)
		if err != nil || k < 1 || k > 5 || strings.ContainsAny(rest, "+-") {
			return false, &Error{Offset: f.off + len(day) + 1, Msg: "bad occurrence " + quote(rest) + " in " + quote(t) + "; want d#k with k from 1 to 5"}
		}
		cd.dowK = k
	}
	if other.text != "*" && other.text != "?" {
		return false, &Error{Offset: other.off, Msg: "day of month must be * or ? when day of week is " + t, Hint: "Quartz # and L combine with no day-of-month restriction"}
	}
	return true, nil
}

func (c *cronDays) next(n, limit int) (int, error) { return c.nextDay(n, limit), nil }
