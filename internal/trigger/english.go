package trigger

import (
	"slices"
	"strconv"
	"strings"
)

// englishState is what English clauses share across ";": the day scope
// ("on weekdays: …") and the end of the previous clause's window, where a
// following "until" window starts.
type englishState struct {
	active  bool
	scope   daySet
	prevEnd int64 // seconds after midnight; -1: the previous clause had no window
}

// eparser is a recursive-descent parser over the tokens of one English
// body (doc.go, Grammar).
type eparser struct {
	p    *parser
	toks []token
	i    int
	end  int // offset just after the body, for "missing …" errors
}

var clauseStarts = []string{"every", "hourly", "minutely", "daily", "weekly", "monthly", "quarterly", "yearly", "annually",
	"at", "on", "once", "last", "first", "second", "third", "fourth", "fifth", "business", "weekdays", "weekends"}

const wantClause = "want a clause such as \"every 15 minutes between 7-10am\", \"hourly\", \"daily at 09:00\", \"weekdays at 18:00\" or \"last day of month\""

func (e *eparser) peek() *token { return e.at(0) }

func (e *eparser) at(k int) *token {
	if e.i+k < len(e.toks) {
		return &e.toks[e.i+k]
	}
	return nil
}

func (e *eparser) peekLow(w string) bool { t := e.peek(); return t != nil && t.low == w }

func (e *eparser) errAt(t *token, msg, hint string) error {
	if t == nil {
		return &Error{Offset: e.end, Msg: msg, Hint: hint}
	}
	return &Error{Offset: t.off, Msg: msg, Hint: hint}
}

// expected reports what was found instead of what the grammar wanted.
func (e *eparser) expected(want string, vocab ...string) error {
	t := e.peek()
	if t == nil {
		return &Error{Offset: e.end, Msg: "unexpected end of trigger; " + want}
	}
	hint := ""
	if t.kind == tWord && len(vocab) > 0 {
		hint = suggest(t.low, vocab, nil)
	}
	return &Error{Offset: t.off, Msg: "unexpected " + quote(t.text) + "; " + want, Hint: hint}
}

func (e *eparser) expect(want string, words ...string) error {
	if t := e.peek(); t != nil && slices.Contains(words, t.low) {
		e.i++
		return nil
	}
	return e.expected(want, words...)
}

func isClauseStart(t *token) bool {
	if t == nil {
		return false
	}
	if _, ok := ordinalNum(t.low); ok && t.kind == tNum {
		return true
	}
	return slices.Contains(clauseStarts, t.low)
}

// clauseBreak reports whether the next token is a comma that separates
// clauses: followed by whitespace and a clause start (the comma rule).
func (e *eparser) clauseBreak() bool {
	t := e.peek()
	return t != nil && t.text == "," && t.spaceAfter && isClauseStart(e.at(1))
}

// listComma reports whether the next token is a comma inside a list.
func (e *eparser) listComma() bool {
	t := e.peek()
	return t != nil && t.text == "," && !e.clauseBreak()
}

func (p *parser) english(text string, base int) error {
	e := &eparser{p: p, toks: lexEnglish(text, base), end: base + len(text)}
	if !p.eng.active {
		p.eng = englishState{active: true, scope: daySet{mask: allWeek, cals: p.cals}, prevEnd: -1}
	}
	for k, t := range e.toks {
		if t.kind == tPunct && t.text == ":" {
			if e.peekLow("on") {
				e.i++
			}
			set, err := e.daySet()
			if err != nil {
				return err
			}
			if e.i != k {
				return e.expected("want \":\" after the days of a day scope, such as \"on weekdays: …\"")
			}
			p.eng.scope = set
			e.i = k + 1
			if e.peek() == nil {
				return e.expected(wantClause + " after the day scope")
			}
			break
		}
	}
	for {
		if err := e.clause(); err != nil {
			return err
		}
		if e.peek() == nil {
			return nil
		}
		if e.clauseBreak() {
			e.i++
			continue
		}
		t := e.peek()
		hint := ""
		if t.text == "," {
			hint = "a comma followed by a space starts a new clause only before a clause word (every, hourly, at, on, daily, …); inside a list write commas without spaces, or use \"and\""
		}
		err := e.expected("want \", \" and another clause, \";\", or a qualifier (in, using, adjust, except, starting, ending, jitter, dst)",
			"in", "using", "adjust", "except", "starting", "ending", "jitter", "dst", "on", "at", "between", "from", "until")
		if hint != "" {
			err.(*Error).Hint = hint
		}
		return err
	}
}

func (e *eparser) clause() error {
	t := e.peek()
	if t == nil {
		return e.expected(wantClause)
	}
	switch t.low {
	case "every":
		n := e.at(1)
		if n != nil && (n.kind == tNum || isUnitWord(n.low)) {
			return e.cadence()
		}
		e.i++
		set, err := e.daySet()
		if err != nil {
			return err
		}
		return e.atTail(t.off, nil, set)
	case "hourly", "minutely":
		return e.cadence()
	case "daily", "weekly", "monthly", "quarterly", "yearly", "annually":
		return e.periodClause()
	case "once":
		return e.onceClause()
	case "at":
		return e.atTail(t.off, nil, e.allSet())
	case "on":
		e.i++
		set, err := e.daySet()
		if err != nil {
			return err
		}
		return e.atTail(t.off, nil, set)
	}
	if _, ok := ordinalNum(t.low); ok || t.low == "last" || t.kind == tNum && e.monthdaysAhead() {
		sel, err := e.selector()
		if err != nil {
			return err
		}
		return e.atTail(t.off, sel, e.allSet())
	}
	if e.isTime(t) {
		return e.atTail(t.off, nil, e.allSet())
	}
	if isDaySetWord(t.low) || dayIndex(t.low) >= 0 {
		set, err := e.daySet()
		if err != nil {
			return err
		}
		return e.atTail(t.off, nil, set)
	}
	if t.kind == tWord {
		vocab := append(slices.Clone(clauseStarts), "minutes", "hours", "weekdays", "weekends")
		return &Error{Offset: t.off, Msg: "unknown word " + quote(t.text) + "; " + wantClause, Hint: suggest(t.low, vocab, nil)}
	}
	return e.expected(wantClause)
}

func (e *eparser) allSet() daySet { return daySet{mask: allWeek, cals: e.p.cals} }

// monthdaysAhead reports whether a list of numbers at the cursor is
// followed by "of" (1,15 of month), not a time list (at 1, 15).
func (e *eparser) monthdaysAhead() bool {
	for k := e.i; k < len(e.toks); k++ {
		t := &e.toks[k]
		switch {
		case t.kind == tNum, t.text == ",":
		case t.low == "of":
			return true
		default:
			return false
		}
	}
	return false
}

// ---------- days ----------

var dayForms = [7][]string{
	{"sun", "sunday", "sundays", "suns"},
	{"mon", "monday", "mondays", "mons"},
	{"tue", "tues", "tuesday", "tuesdays"},
	{"wed", "weds", "wednesday", "wednesdays"},
	{"thu", "thur", "thurs", "thursday", "thursdays"},
	{"fri", "friday", "fridays", "fris"},
	{"sat", "saturday", "saturdays", "sats"},
}

// dayIndex returns the weekday (0 Sunday) a day name means, or -1.
func dayIndex(w string) int {
	for i, forms := range dayForms {
		if slices.Contains(forms, w) {
			return i
		}
	}
	return -1
}

func isDaySetWord(w string) bool {
	switch w {
	case "day", "days", "weekdays", "weekday", "weekends", "weekend", "business", "non":
		return true
	}
	return false
}

const wantDays = "want days: day, weekdays, weekends, business days, non-business days, or day names such as mon-fri or sat,sun"

// daySet parses day_set.
func (e *eparser) daySet() (daySet, error) {
	set := e.allSet()
	t := e.peek()
	if t == nil {
		return set, e.expected(wantDays)
	}
	switch t.low {
	case "day", "days":
		e.i++
	case "weekdays", "weekday":
		set.mask = 0x3e
		e.i++
	case "weekends", "weekend":
		set.mask = 0x41
		e.i++
	case "business":
		e.i++
		if err := e.expect("want \"days\" after \"business\"", "days", "day"); err != nil {
			return set, err
		}
		set.biz = bizOnly
	case "non":
		e.i++
		if d, b := e.peek(), e.at(1); d == nil || d.text != "-" || b == nil || b.low != "business" {
			return set, e.expected("want \"non-business days\"")
		}
		e.i += 2
		if err := e.expect("want \"days\" after \"non-business\"", "days", "day"); err != nil {
			return set, err
		}
		set.biz = bizNon
	default:
		m, err := e.dayNames()
		if err != nil {
			return set, err
		}
		set.mask = m
	}
	return set, nil
}

// dayNames parses DAY_NAME [- DAY_NAME] { , DAY_NAME [- DAY_NAME] } into
// a weekday mask. Ranges may wrap (fri-mon).
func (e *eparser) dayNames() (uint8, error) {
	var mask uint8
	for {
		a, err := e.dayName()
		if err != nil {
			return 0, err
		}
		b := a
		if t := e.peek(); t != nil && t.text == "-" {
			e.i++
			if b, err = e.dayName(); err != nil {
				return 0, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			mask |= 1 << uint(d)
			if d == b {
				break
			}
		}
		if !e.listComma() || e.at(1) == nil || dayIndex(e.at(1).low) < 0 {
			return mask, nil
		}
		e.i++
	}
}

func (e *eparser) dayName() (int, error) {
	t := e.peek()
	if t != nil {
		if d := dayIndex(t.low); d >= 0 {
			e.i++
			return d, nil
		}
	}
	if t != nil && t.kind == tWord {
		return 0, &Error{Offset: t.off, Msg: "unknown day " + quote(t.text) + "; " + wantDays, Hint: suggest(t.low, dayNames, fullDays)}
	}
	return 0, e.expected(wantDays)
}

// intersect combines day sets, refusing combinations that match nothing.
func (e *eparser) intersect(a, b daySet, at *token) (daySet, error) {
	if a.biz != bizAny && b.biz != bizAny && a.biz != b.biz {
		return a, e.errAt(at, "trigger never fires: business days and non-business days exclude each other", "")
	}
	out := daySet{mask: a.mask & b.mask, biz: max(a.biz, b.biz), cals: a.cals}
	if out.mask == 0 {
		return a, e.errAt(at, "trigger never fires: no weekday is in both day sets", "check the day scope before \":\" and the clause's \"on\"")
	}
	return out, nil
}

// compose builds a rule's day selector from an optional ordinal selector
// and a day set.
func compose(primary daySelector, set daySet) daySelector {
	switch {
	case primary == nil && set.all():
		return allDays{}
	case primary == nil:
		s := set
		return &s
	case set.all():
		return primary
	}
	s := set
	return both{primary, &s}
}

// ---------- ordinals ----------

var ordWords = map[string]int{"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}

// ordinalNum parses ORD: 1st, 2nd, 3rd, 15th or first…fifth.
func ordinalNum(w string) (int, bool) {
	if n, ok := ordWords[w]; ok {
		return n, true
	}
	if len(w) < 3 {
		return 0, false
	}
	suf := w[len(w)-2:]
	if suf != "st" && suf != "nd" && suf != "rd" && suf != "th" {
		return 0, false
	}
	n, err := strconv.Atoi(w[:len(w)-2])
	if err != nil || n <= 0 || w[0] == '+' {
		return 0, false
	}
	return n, true
}

func ordinalSuffix(n int) string {
	if n%100 >= 11 && n%100 <= 13 {
		return "th"
	}
	switch n % 10 {
	case 1:
		return "st"
	case 2:
		return "nd"
	case 3:
		return "rd"
	}
	return "th"
}

func ordinalText(k int) string {
	switch {
	case k == -1:
		return "last"
	case k < 0:
		return strconv.Itoa(-k) + ordinalSuffix(-k) + " last"
	}
	return strconv.Itoa(k) + ordinalSuffix(k)
}

// ordinals parses ordinal { , ordinal }, where ordinal is ORD [last] or
// last; plain numbers are allowed when ints is set (1,15 of month).
func (e *eparser) ordinals(ints bool) ([]int, bool, error) {
	var ords []int
	sawInt := false
	for {
		t := e.peek()
		if t == nil {
			return nil, false, e.expected("want an ordinal such as 1st, third or last")
		}
		var k int
		switch n, ok := ordinalNum(t.low); {
		case t.low == "last":
			k = -1
		case ok:
			if t.kind == tNum && t.low[len(t.low)-2:] != ordinalSuffix(n) {
				return nil, false, &Error{Offset: t.off, Msg: "bad ordinal " + quote(t.text), Hint: "did you mean " + quote(strconv.Itoa(n)+ordinalSuffix(n)) + "?"}
			}
			k = n
			if nt := e.at(1); nt != nil && nt.low == "last" {
				k = -n
				e.i++
			}
		case ints && t.kind == tNum:
			v, err := strconv.Atoi(t.low)
			if err != nil || v <= 0 {
				return nil, false, &Error{Offset: t.off, Msg: "bad day " + quote(t.text) + "; want a day number such as 15 or an ordinal such as 15th"}
			}
			k, sawInt = v, true
		default:
			return nil, false, e.expected("want an ordinal such as 1st, third or last")
		}
		e.i++
		if !slices.Contains(ords, k) {
			ords = append(ords, k)
		}
		if e.clauseBreak() {
			if nt := e.at(1); nt != nil {
				if _, isOrd := ordinalNum(nt.low); isOrd || nt.low == "last" {
					return nil, false, &Error{Offset: e.peek().off, Msg: "a comma followed by a space starts a new clause, so the ordinal list ends here",
						Hint: "inside a list write commas without spaces (1st,third mon) or use \"and\""}
				}
			}
		}
		if !e.listComma() {
			if t := e.peek(); t != nil && t.low == "and" {
				if nt := e.at(1); nt != nil && (nt.low == "last" || nt.kind == tNum) {
					e.i++
					continue
				}
			}
			return ords, sawInt, nil
		}
		e.i++
	}
}

// selector parses an ordinal date selector (docs/triggers.md#date-selectors):
// ordinals (day_names | day | business day) of period_sel, or
// monthdays of period_sel.
func (e *eparser) selector() (daySelector, error) {
	first := e.peek()
	ords, sawInt, err := e.ordinals(true)
	if err != nil {
		return nil, err
	}
	o := &ordDays{ords: ords, cals: e.p.cals, months: 0x1ffe}
	t := e.peek()
	switch {
	case t == nil:
		return nil, e.expected("want day, business day or a day name after the ordinal, then \"of month\"")
	case t.low == "of":
		o.kind = ordDay
	case t.low == "day" || t.low == "days":
		o.kind = ordDay
		e.i++
	case t.low == "business":
		e.i++
		if err := e.expect("want \"day\" after \"business\"", "day", "days"); err != nil {
			return nil, err
		}
		o.kind = ordBusiness
	case dayIndex(t.low) >= 0:
		m, err := e.dayNames()
		if err != nil {
			return nil, err
		}
		o.kind, o.wdays = ordWeekday, m
	default:
		return nil, e.expected("want day, business day or a day name after the ordinal, such as \"2nd tuesday of month\"", "day", "business", "monday", "friday")
	}
	if sawInt && o.kind != ordDay {
		return nil, &Error{Offset: first.off, Msg: "a plain number counts days; want an ordinal before " + quote(t.text), Hint: "write 2nd, third or last, such as \"2nd tuesday of month\""}
	}
	if err := e.expect("want \"of\" and a period, such as \"of month\"", "of"); err != nil {
		return nil, err
	}
	if err := e.periodSel(o); err != nil {
		return nil, err
	}
	return o, e.checkOrdinals(o, first)
}

var maxOrd = [3][3]int{ // [kind][per]
	ordDay:      {31, 92, 366},
	ordWeekday:  {5, 14, 53},
	ordBusiness: {31, 92, 366},
}

func (e *eparser) checkOrdinals(o *ordDays, at *token) error {
	lim := maxOrd[o.kind][o.per]
	for _, k := range o.ords {
		if k > lim || -k > lim {
			what := [...]string{"day", "weekday", "business day"}[o.kind]
			per := [...]string{"month", "quarter", "year"}[o.per]
			return &Error{Offset: at.off, Msg: "ordinal " + ordinalText(k) + " " + what + " of a " + per + " never exists; want at most " + strconv.Itoa(lim),
				Hint: "use \"last\" for the end of the " + per}
		}
	}
	return nil
}

// periodSel parses month | quarter | year | month_names |
// q_ordinals month of quarter.
func (e *eparser) periodSel(o *ordDays) error {
	t := e.peek()
	const want = "want month, quarter, year, month names such as sep,oct or \"first month of quarter\""
	if t == nil {
		return e.expected(want)
	}
	switch t.low {
	case "month":
		e.i++
		return nil
	case "quarter":
		o.per = perQuarter
		e.i++
		return nil
	case "year":
		o.per = perYear
		e.i++
		return nil
	}
	if _, ok := ordinalNum(t.low); ok || t.low == "last" {
		qs, _, err := e.ordinals(false)
		if err != nil {
			return err
		}
		if err := e.expect("want \"month of quarter\"", "month"); err != nil {
			return err
		}
		if err := e.expect("want \"of quarter\"", "of"); err != nil {
			return err
		}
		if err := e.expect("want \"quarter\"", "quarter"); err != nil {
			return err
		}
		o.months = 0
		for _, q := range qs {
			if q < -3 || q > 3 {
				return &Error{Offset: t.off, Msg: "a quarter has three months; want first, second, third or last month of quarter"}
			}
			if q < 0 {
				q += 4
			}
			for m := q; m <= 12; m += 3 {
				o.months |= 1 << uint(m)
			}
		}
		return nil
	}
	if monthIndex(t.low) > 0 {
		o.months = 0
		for {
			a, err := e.monthName()
			if err != nil {
				return err
			}
			b := a
			if t := e.peek(); t != nil && t.text == "-" {
				e.i++
				if b, err = e.monthName(); err != nil {
					return err
				}
			}
			for m := a; ; m = m%12 + 1 {
				o.months |= 1 << uint(m)
				if m == b {
					break
				}
			}
			if !e.listComma() || e.at(1) == nil || monthIndex(e.at(1).low) <= 0 {
				return nil
			}
			e.i++
		}
	}
	if t.kind == tWord {
		return &Error{Offset: t.off, Msg: "unknown period " + quote(t.text) + "; " + want, Hint: suggest(t.low, append([]string{"month", "quarter", "year"}, monthNames...), fullMonths)}
	}
	return e.expected(want)
}

// monthIndex returns the month (1-12) a name means, or 0.
func monthIndex(w string) int {
	for i := range monthNames {
		if w == monthNames[i] || w == fullMonths[i] || w == "sept" && i == 8 {
			return i + 1
		}
	}
	return 0
}

func (e *eparser) monthName() (int, error) {
	t := e.peek()
	if t != nil {
		if m := monthIndex(t.low); m > 0 {
			e.i++
			return m, nil
		}
		if t.kind == tWord {
			return 0, &Error{Offset: t.off, Msg: "unknown month " + quote(t.text) + "; want jan-dec or january-december", Hint: suggest(t.low, monthNames, fullMonths)}
		}
	}
	return 0, e.expected("want a month name such as sep or september")
}

// ---------- times ----------

// clock is a TIME as written; mer is 0, 'a' or 'p'.
type clock struct {
	h, m, s int
	mer     byte
	tok     *token
}

func (c clock) sec() int { return c.h*3600 + c.m*60 + c.s }

// withMer returns the time of c read with meridiem mer (0: 24-hour).
func (c clock) withMer(mer byte) (int, bool) {
	h := c.h
	switch mer {
	case 0:
		if h > 23 {
			return 0, false
		}
	default:
		if h < 1 || h > 12 {
			return 0, false
		}
		h %= 12
		if mer == 'p' {
			h += 12
		}
	}
	return h*3600 + c.m*60 + c.s, true
}

// parseClockText parses H[:MM[:SS]][am|pm], noon or midnight, where a
// bare hour (7) is allowed: windows and lists take them.
func parseClockText(w string) (clock, bool) {
	switch w {
	case "noon":
		return clock{h: 12}, true
	case "midnight":
		return clock{}, true
	}
	var c clock
	if strings.HasSuffix(w, "am") || strings.HasSuffix(w, "pm") {
		c.mer, w = w[len(w)-2], w[:len(w)-2]
	}
	parts := strings.Split(w, ":")
	if len(parts) > 3 {
		return c, false
	}
	var v [3]int
	for i, part := range parts {
		if len(part) == 0 || len(part) > 2 || i > 0 && len(part) != 2 {
			return c, false
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || part[0] == '+' {
			return c, false
		}
		v[i] = n
	}
	c.h, c.m, c.s = v[0], v[1], v[2]
	if c.m > 59 || c.s > 59 || c.h > 23 || c.mer != 0 && (c.h < 1 || c.h > 12) {
		return c, false
	}
	return c, true
}

func (e *eparser) isTime(t *token) bool {
	if t == nil || t.kind != tNum && t.low != "noon" && t.low != "midnight" {
		return false
	}
	_, ok := parseClockText(t.low)
	return ok
}

// clockTok reads one TIME, with an optional separate "am"/"pm" word.
func (e *eparser) clockTok() (clock, error) {
	t := e.peek()
	if !e.isTime(t) {
		if t != nil && t.kind == tNum {
			return clock{}, &Error{Offset: t.off, Msg: "bad time " + quote(t.text) + "; want HH:MM, 9am, 10:30pm, noon or midnight"}
		}
		return clock{}, e.expected("want a time such as 09:00, 9am, noon or midnight")
	}
	c, _ := parseClockText(t.low)
	c.tok = t
	e.i++
	if n := e.peek(); c.mer == 0 && n != nil && (n.low == "am" || n.low == "pm") && t.kind == tNum {
		if c.h < 1 || c.h > 12 {
			return c, &Error{Offset: t.off, Msg: "bad time " + quote(t.text+" "+n.text) + "; want an hour from 1 to 12 with am or pm"}
		}
		c.mer = n.low[0]
		e.i++
	}
	return c, nil
}

func (e *eparser) single(c clock) (int64, error) {
	v, ok := c.withMer(c.mer)
	if !ok {
		return 0, &Error{Offset: c.tok.off, Msg: "bad time " + quote(c.tok.text) + "; want HH:MM, 9am, noon or midnight"}
	}
	return int64(v), nil
}

// timeList parses TIME { , TIME } [ and TIME ].
func (e *eparser) timeList() ([]int64, error) {
	var out []int64
	for {
		c, err := e.clockTok()
		if err != nil {
			return nil, err
		}
		v, err := e.single(c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if e.listComma() {
			e.i++
			continue
		}
		if e.peekLow("and") && e.isTime(e.at(1)) {
			e.i++
			continue
		}
		break
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// window reads "a SEP b" and applies the meridiem rule: in 7-10am, a
// takes b's meridiem, or the other one if that puts a at or after b.
func (e *eparser) window(seps ...string) (a, b int64, sep string, err error) {
	ca, err := e.clockTok()
	if err != nil {
		return 0, 0, "", err
	}
	if t := e.peek(); t != nil {
		sep = t.low
	}
	if err := e.expect("want "+quoteList(seps)+" between the two times of the window", seps...); err != nil {
		return 0, 0, "", err
	}
	cb, err := e.clockTok()
	if err != nil {
		return 0, 0, "", err
	}
	bv, err := e.single(cb)
	if err != nil {
		return 0, 0, "", err
	}
	var av int
	if ca.mer == 0 && cb.mer != 0 && ca.h >= 1 && ca.h <= 12 && ca.tok.low != "noon" && ca.tok.low != "midnight" {
		av, _ = ca.withMer(cb.mer)
		if int64(av) > bv {
			other := byte('a')
			if cb.mer == 'a' {
				other = 'p'
			}
			av, _ = ca.withMer(other)
		}
	} else {
		x, err := e.single(ca)
		if err != nil {
			return 0, 0, "", err
		}
		av = int(x)
	}
	return int64(av), bv, sep, nil
}

func quoteList(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = quote(w)
	}
	return strings.Join(q, " or ")
}

func isUnitWord(w string) bool { return unitSeconds(w) > 0 }

func unitSeconds(w string) int64 {
	switch w {
	case "minutes", "minute", "mins", "min":
		return 60
	case "hours", "hour", "hrs", "hr":
		return 3600
	}
	return 0
}

// cadence parses every N unit | every unit | hourly | minutely, then an
// optional window and day filters.
func (e *eparser) cadence() error {
	t := e.peek()
	e.i++
	var step int64
	switch t.low {
	case "hourly":
		step = 3600
	case "minutely":
		step = 60
	default: // every
		count := int64(1)
		if n := e.peek(); n != nil && n.kind == tNum {
			v, err := strconv.ParseInt(n.low, 10, 64)
			if err != nil {
				hint := ""
				if d := strings.TrimLeft(n.low, "0123456789"); d != n.low && isUnitWord(d) {
					hint = "write a space between the number and the unit: every " + n.low[:len(n.low)-len(d)] + " " + d
				}
				return &Error{Offset: n.off, Msg: "bad count " + quote(n.text) + "; want a number and a unit, such as every 15 minutes", Hint: hint}
			}
			if v <= 0 || v > 1440 {
				return &Error{Offset: n.off, Msg: "count " + n.text + " out of range; want 1 to 1440"}
			}
			count = v
			e.i++
		}
		u := e.peek()
		if u == nil {
			return e.expected("want a unit: minutes or hours")
		}
		us := unitSeconds(u.low)
		if us == 0 {
			if u.kind == tWord {
				return &Error{Offset: u.off, Msg: "unknown unit " + quote(u.text) + "; want minutes or hours", Hint: suggest(u.low, []string{"minutes", "hours"}, nil)}
			}
			return e.expected("want a unit: minutes or hours")
		}
		e.i++
		step = count * us
	}
	st := &stepTimes{a: 0, b: 86400, step: step}
	r := rule{times: st, off: t.off}
	w := e.peek()
	var err error
	switch {
	case w == nil:
		r.elapsed = true
	case w.low == "between":
		e.i++
		st.a, st.b, _, err = e.window("-", "and")
	case w.low == "from":
		e.i++
		var sep string
		st.a, st.b, sep, err = e.window("to", "through", "until", "till")
		st.closed = sep == "to" || sep == "through" // GAE: from … to includes the end
	case w.low == "until" || w.low == "till":
		e.i++
		var c clock
		if c, err = e.clockTok(); err == nil {
			st.b, err = e.single(c)
		}
		st.a = max(e.p.eng.prevEnd, 0)
	case w.low == "synchronized":
		e.i++
		r.sync = true
	default:
		r.elapsed = true
	}
	if err != nil {
		return err
	}
	if !r.elapsed && !r.sync {
		if st.b == st.a {
			return &Error{Offset: w.off, Msg: "empty window: it starts and ends at " + wallText(st.a), Hint: "leave the window out for the whole day"}
		}
		if st.b < st.a {
			st.b += 86400 // crosses midnight: [a on D, b on D+1)
		}
	}
	if r.sync && 86400%step != 0 {
		return &Error{Offset: w.off, Msg: "every " + durText(step) + " synchronized does not divide a day into equal steps", Hint: "use a window, or \"starting DATETIME\" for an elapsed-time cadence"}
	}
	set, err := e.filters(e.allSet())
	if err != nil {
		return err
	}
	set, err = e.intersect(set, e.p.eng.scope, t)
	if err != nil {
		return err
	}
	r.days = compose(nil, set)
	e.p.spec.rules = append(e.p.spec.rules, r)
	e.p.eng.prevEnd = -1
	if !r.elapsed && !r.sync {
		e.p.eng.prevEnd = st.b % 86400
	}
	return nil
}

// filters parses { on day_set } and intersects them into set.
func (e *eparser) filters(set daySet) (daySet, error) {
	for e.peekLow("on") {
		at := e.peek()
		e.i++
		f, err := e.daySet()
		if err != nil {
			return set, err
		}
		if set, err = e.intersect(set, f, at); err != nil {
			return set, err
		}
	}
	return set, nil
}

// atTail parses [at] time_list { on day_set } after a day spec, and adds
// the rule. Without times the day's run is at 00:00.
func (e *eparser) atTail(off int, primary daySelector, set daySet) error {
	secs := []int64{0}
	if e.peekLow("at") {
		e.i++
		var err error
		if secs, err = e.timeList(); err != nil {
			return err
		}
	} else if e.isTime(e.peek()) {
		var err error
		if secs, err = e.timeList(); err != nil {
			return err
		}
	}
	set, err := e.filters(set)
	if err != nil {
		return err
	}
	at := &e.toks[0]
	for k := range e.toks {
		if e.toks[k].off == off {
			at = &e.toks[k]
		}
	}
	if set, err = e.intersect(set, e.p.eng.scope, at); err != nil {
		return err
	}
	if e.isTime(e.peek()) {
		return e.expected("want \"at\" before the times, or commas between them")
	}
	e.p.spec.rules = append(e.p.spec.rules, rule{days: compose(primary, set), times: &listTimes{secs: secs}, off: off})
	e.p.eng.prevEnd = -1
	return nil
}

// periodClause parses daily | weekly [on days] | monthly | quarterly |
// yearly, then [at times].
func (e *eparser) periodClause() error {
	t := e.peek()
	e.i++
	set := e.allSet()
	var primary daySelector
	switch t.low {
	case "weekly":
		set.mask = 1 << 1 // Monday, the ISO week's first day (unlike cron's @weekly)
		if e.peekLow("on") {
			e.i++
			m, err := e.dayNames()
			if err != nil {
				return err
			}
			set.mask = m
		}
	case "monthly", "quarterly", "yearly", "annually":
		per := map[string]int{"monthly": perMonth, "quarterly": perQuarter, "yearly": perYear, "annually": perYear}[t.low]
		primary = &ordDays{per: per, months: 0x1ffe, kind: ordDay, ords: []int{1}, cals: e.p.cals}
		if e.peekLow("on") {
			return &Error{Offset: e.peek().off, Msg: t.text + " runs on the first day of its period; \"on\" days are for daily and weekly",
				Hint: "for a weekday write an ordinal, such as \"first fri of month\""}
		}
	}
	return e.atTail(t.off, primary, set)
}

// onceClause parses once [at] (DATETIME | DATE TIME).
func (e *eparser) onceClause() error {
	t := e.peek()
	e.i++
	if e.peekLow("at") {
		e.i++
	}
	d := e.peek()
	if d == nil || d.kind != tDate {
		return e.expected("want a date and time after once, such as \"once at 2027-01-04 09:00\"")
	}
	e.i++
	fs := []field{{text: "@once", off: t.off}, {text: d.text, off: d.off}}
	if !strings.ContainsAny(d.text, "Tt") {
		tm := e.peek()
		if tm == nil || !e.isTime(tm) {
			return e.expected("want a time after the date, such as 09:00")
		}
		e.i++
		fs = append(fs, field{text: tm.text, off: tm.off})
	}
	e.p.eng.prevEnd = -1
	return e.p.once(fs, e.end)
}
