package trigger

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// ParseSpec is Parse returning the concrete *Spec. Errors are *Error.
func ParseSpec(expr string, opt Options) (*Spec, error) {
	p := parser{expr: expr, loc: opt.Location, dst: opt.DST, opt: opt}
	if p.loc == nil {
		p.loc = time.UTC
	}
	p.cals = &calSet{cals: []*calendar.Calendar{weekendsOnly}, implicit: true}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.spec, nil
}

// onceWall is an @once time written without an offset; it is resolved in
// the spec's zone once the qualifiers (in ZONE, dst) are known.
type onceWall struct {
	wall calendar.Wall
	off  int
}

type parser struct {
	expr     string
	opt      Options
	loc      *time.Location
	zoneSet  bool
	dst      calendar.DSTPolicy
	dstSet   bool
	spec     *Spec
	onceWall []onceWall
	cals     *calSet
	eng      englishState
	calsSet  bool
	adjSet   bool
	bounds   [2]*bound // starting, ending
}

// bound is a starting or ending qualifier, resolved in the spec's zone
// once every qualifier is known.
type bound struct {
	off     int
	instant int64 // an RFC 3339 time
	abs     bool
	wall    calendar.Wall
	date    bool // a DATE alone: the whole day
}

// tokens splits s (which starts at byte offset base of the expression) at
// ASCII whitespace.
func tokens(s string, base int) []field {
	var out []field
	i := 0
	for i < len(s) {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		if j > i {
			out = append(out, field{text: s[i:j], off: base + i})
		}
		i = j
	}
	return out
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

var qualifierWords = map[string]bool{
	"in": true, "dst": true, "using": true, "adjust": true, "except": true,
	"starting": true, "ending": true, "jitter": true,
}

func (p *parser) parse() error {
	p.spec = &Spec{cals: p.cals, id: p.opt.ID}
	rest, base := p.expr, 0
	if strings.TrimSpace(rest) == "" {
		return &Error{Offset: 0, Msg: "empty trigger; want cron fields such as \"*/15 7-9 * * 1-5\", a descriptor such as @daily, or English such as \"every 15 minutes between 7-10am\""}
	}
	// CRON_TZ= / TZ= prefix.
	lead := len(rest) - len(strings.TrimLeft(rest, " \t\r\n\v\f"))
	for _, pre := range []string{"CRON_TZ=", "TZ="} {
		if len(rest)-lead >= len(pre) && strings.EqualFold(rest[lead:lead+len(pre)], pre) {
			zs := lead + len(pre)
			ze := zs
			for ze < len(rest) && !isSpace(rest[ze]) && rest[ze] != ';' {
				ze++
			}
			if err := p.setZone(rest[zs:ze], zs); err != nil {
				return err
			}
			rest, base = rest[ze:], ze
			break
		}
	}
	// Bodies separated by ";"; qualifiers follow the last one.
	segs := strings.Split(rest, ";")
	for i, seg := range segs {
		toks := tokens(seg, base)
		last := i == len(segs)-1
		body, quals := toks, []field(nil)
		for j, t := range toks {
			if qualifierWords[strings.ToLower(t.text)] {
				if !last {
					return &Error{Offset: t.off, Msg: "qualifier " + quote(t.text) + " must come after the last body", Hint: "qualifiers apply to the whole spec"}
				}
				body, quals = toks[:j], toks[j:]
				break
			}
		}
		if len(body) == 0 {
			at := base
			if len(quals) > 0 {
				at = quals[0].off
			}
			return &Error{Offset: at, Msg: "empty trigger body; want cron fields or a descriptor such as @daily"}
		}
		if err := p.body(body, base+len(seg)); err != nil {
			return err
		}
		if err := p.qualifiers(quals); err != nil {
			return err
		}
		base += len(seg) + 1
	}
	return p.finish()
}

func (p *parser) setZone(name string, off int) error {
	if p.zoneSet {
		return &Error{Offset: off, Msg: "a spec has one time zone; " + quote(name) + " is a second one", Hint: "use two triggers for two zones"}
	}
	if name == "" || strings.EqualFold(name, "local") {
		return &Error{Offset: off, Msg: "missing time zone; want an IANA name such as Europe/London or UTC"}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return &Error{Offset: off, Msg: "unknown time zone " + quote(name) + "; want an IANA name such as Europe/London or UTC"}
	}
	p.loc, p.zoneSet = loc, true
	return nil
}

// body compiles one cron or descriptor body; end is the offset just after
// it, for errors about something missing.
func (p *parser) body(fs []field, end int) error {
	if strings.HasPrefix(fs[0].text, "@") {
		p.eng.active = false
		return p.descriptor(fs, end)
	}
	if looksEnglish(fs) {
		last := fs[len(fs)-1]
		return p.english(p.expr[fs[0].off:last.off+len(last.text)], fs[0].off)
	}
	p.eng.active = false
	if len(fs) >= 6 && isLetter(fs[5].text[0]) {
		// Five good cron fields and then a word: a misspelt qualifier
		// ("jiter 5m"), not a sixth field.
		if _, err := parseCron(fs[:5]); err == nil {
			if _, err6 := parseCron(fs[:min(len(fs), 6)]); err6 != nil || len(fs) > 6 {
				w := strings.ToLower(fs[5].text)
				return &Error{Offset: fs[5].off, Msg: "unexpected " + quote(fs[5].text) + " after the cron fields; " + wantQualifier,
					Hint: suggest(w, []string{"in", "using", "adjust", "except", "starting", "ending", "jitter", "dst"}, nil)}
			}
		}
	}
	switch {
	case len(fs) == 5 || len(fs) == 6:
		r, err := parseCron(fs)
		if err != nil {
			return err
		}
		texts := make([]string, len(fs))
		for i, f := range fs {
			texts[i] = f.text
		}
		r.text = strings.Join(texts, " ")
		p.spec.rules = append(p.spec.rules, r)
		return nil
	case len(fs) > 6:
		hint := ""
		if len(fs) == 7 {
			hint = "Quartz's seventh field (year) is not supported"
		}
		return &Error{Offset: fs[6].off, Msg: "want 5 or 6 cron fields, got " + strconv.Itoa(len(fs)), Hint: hint}
	default:
		return &Error{Offset: end, Msg: "want 5 or 6 cron fields (minute hour day-of-month month day-of-week), got " + strconv.Itoa(len(fs))}
	}
}

var englishWords = map[string]bool{
	"of": true, "at": true, "on": true, "and": true, "between": true, "from": true, "to": true, "through": true,
	"until": true, "till": true, "every": true, "day": true, "days": true, "minutes": true, "hours": true,
	"noon": true, "midnight": true, "last": true, "business": true, "month": true, "quarter": true, "year": true,
}

// looksEnglish tells the English form from cron. A cron body starts with a
// seconds or minutes field, never a letter, and has no times (09:00,
// 10am), ordinals (1st) or English words.
func looksEnglish(fs []field) bool {
	if isLetter(fs[0].text[0]) {
		return true
	}
	for _, f := range fs {
		l := strings.ToLower(f.text)
		if strings.Contains(l, ":") || strings.HasSuffix(l, "am") || strings.HasSuffix(l, "pm") || englishWords[l] {
			return true
		}
		for _, item := range strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == '-' }) {
			if _, ok := ordinalNum(item); ok && isDigit(item[0]) {
				return true
			}
		}
	}
	return false
}

var descriptors = map[string]string{
	"@yearly":    "0 0 1 1 *",
	"@annually":  "0 0 1 1 *",
	"@quarterly": "0 0 1 1,4,7,10 *",
	"@monthly":   "0 0 1 * *",
	"@weekly":    "0 0 * * 0", // Sunday, as in cron (docs/triggers.md#descriptors)
	"@daily":     "0 0 * * *",
	"@midnight":  "0 0 * * *",
	"@hourly":    "0 * * * *",
}

var descriptorNames = []string{"@yearly", "@annually", "@quarterly", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every", "@once"}

func (p *parser) descriptor(fs []field, end int) error {
	name := strings.ToLower(fs[0].text)
	if c, ok := descriptors[name]; ok {
		if len(fs) > 1 {
			return &Error{Offset: fs[1].off, Msg: "unexpected " + quote(fs[1].text) + " after " + fs[0].text}
		}
		r, err := parseCron(tokens(c, 0))
		if err != nil {
			return &Error{Offset: fs[0].off, Msg: "internal: descriptor " + name + ": " + err.Error()}
		}
		r.text = name
		p.spec.rules = append(p.spec.rules, r)
		return nil
	}
	switch name {
	case "@every":
		return p.every(fs, end)
	case "@once":
		return p.once(fs, end)
	case "@reboot":
		return &Error{Offset: fs[0].off, Msg: "@reboot is not supported: Talon fires on time, not when a machine starts",
			Hint: "use @once DATETIME, or trigger the job through the API"}
	}
	return &Error{Offset: fs[0].off, Msg: "unknown descriptor " + quote(fs[0].text) + "; want @yearly, @annually, @quarterly, @monthly, @weekly, @daily, @midnight, @hourly, @every or @once",
		Hint: suggest(name, descriptorNames, nil)}
}

func (p *parser) every(fs []field, end int) error {
	if len(fs) < 2 {
		return &Error{Offset: end, Msg: "@every needs a duration, such as @every 90m or @every 1h/15m"}
	}
	if len(fs) > 2 {
		return &Error{Offset: fs[2].off, Msg: "unexpected " + quote(fs[2].text) + " after @every DURATION[/PHASE]"}
	}
	dt, pt, hasPhase := strings.Cut(fs[1].text, "/")
	every, err := parseDuration(dt, fs[1].off)
	if err != nil {
		return err
	}
	if every < time.Second || every%time.Second != 0 {
		return &Error{Offset: fs[1].off, Msg: "@every interval " + quote(dt) + " must be whole seconds, at least 1s"}
	}
	var phase time.Duration
	if hasPhase {
		poff := fs[1].off + len(dt) + 1
		if phase, err = parseDuration(pt, poff); err != nil {
			return err
		}
		if phase%time.Second != 0 || phase >= every {
			return &Error{Offset: poff, Msg: "@every phase " + quote(pt) + " must be whole seconds and less than the interval " + dt}
		}
	}
	p.spec.grids = append(p.spec.grids, grid{every: int64(every / time.Second), phase: int64(phase / time.Second)})
	return nil
}

// parseDuration is time.ParseDuration plus a leading day count: 1d,
// 1d12h, 90m.
func parseDuration(s string, off int) (time.Duration, error) {
	bad := &Error{Offset: off, Msg: "bad duration " + quote(s) + "; want a positive duration such as 90m, 1h30m or 1d"}
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, bad
	}
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 36500 || strings.ContainsAny(s[:i], "+-") {
			return 0, bad
		}
		total = time.Duration(n) * 24 * time.Hour
		if s = s[i+1:]; s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 36500*24*time.Hour {
		return 0, bad
	}
	return total + d, nil
}

func (p *parser) once(fs []field, end int) error {
	if len(fs) < 2 {
		return &Error{Offset: end, Msg: "@once needs a date and time, such as @once 2027-01-04T09:00:00Z or @once 2027-01-04 09:00"}
	}
	if len(fs) > 3 {
		return &Error{Offset: fs[3].off, Msg: "unexpected " + quote(fs[3].text) + " after @once DATETIME"}
	}
	if t, err := time.Parse(time.RFC3339, fs[1].text); err == nil {
		if len(fs) == 3 {
			return &Error{Offset: fs[2].off, Msg: "unexpected " + quote(fs[2].text) + " after an RFC 3339 time"}
		}
		p.spec.once = append(p.spec.once, t.Unix())
		return nil
	}
	ds, ts, hasT := strings.Cut(fs[1].text, "T")
	toff := fs[1].off + len(ds) + 1
	if !hasT {
		if len(fs) < 3 {
			return &Error{Offset: end, Msg: "@once needs a time after the date, such as 09:00"}
		}
		ts, toff = fs[2].text, fs[2].off
	} else if len(fs) == 3 {
		return &Error{Offset: fs[2].off, Msg: "unexpected " + quote(fs[2].text) + " after @once DATETIME"}
	}
	d, err := calendar.ParseDate(ds)
	if err != nil {
		return &Error{Offset: fs[1].off, Msg: "bad date " + quote(ds) + "; want YYYY-MM-DD"}
	}
	sec, ok := parseClock(ts)
	if !ok {
		return &Error{Offset: toff, Msg: "bad time " + quote(ts) + "; want HH:MM[:SS], 9am, noon or midnight (or an RFC 3339 time with an offset)"}
	}
	w := calendar.Wall{Date: d, Hour: sec / 3600, Minute: sec / 60 % 60, Second: sec % 60}
	p.onceWall = append(p.onceWall, onceWall{wall: w, off: fs[1].off})
	return nil
}

// parseClock parses TIME: H[:MM[:SS]][am|pm], noon or midnight, into
// seconds after midnight.
func parseClock(s string) (int, bool) {
	l := strings.ToLower(s)
	switch l {
	case "noon":
		return 12 * 3600, true
	case "midnight":
		return 0, true
	}
	mer := ""
	if strings.HasSuffix(l, "am") || strings.HasSuffix(l, "pm") {
		mer, l = l[len(l)-2:], l[:len(l)-2]
	}
	parts := strings.Split(l, ":")
	if len(parts) > 3 || (mer == "" && len(parts) == 1) {
		return 0, false
	}
	var v [3]int
	for i, part := range parts {
		if len(part) == 0 || len(part) > 2 || (i > 0 && len(part) != 2) {
			return 0, false
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return 0, false
		}
		v[i] = n
	}
	h, m, sec := v[0], v[1], v[2]
	if m > 59 || sec > 59 {
		return 0, false
	}
	switch mer {
	case "":
		if h > 23 {
			return 0, false
		}
	default:
		if h < 1 || h > 12 {
			return 0, false
		}
		h %= 12
		if mer == "pm" {
			h += 12
		}
	}
	return h*3600 + m*60 + sec, true
}

// maxJitter bounds jitter DURATION.
const maxJitter = 24 * time.Hour

const wantQualifier = "want in ZONE, using CAL, adjust CONVENTION, except holidays|on DATE, starting DATE, ending DATE, jitter DURATION or dst shift|skip"

func (p *parser) qualifiers(qs []field) error {
	missing := func(what string) error {
		return &Error{Offset: len(p.expr), Msg: "missing " + what}
	}
	for i := 0; i < len(qs); {
		q := qs[i]
		word := strings.ToLower(q.text)
		// arg returns the fields up to the next qualifier word.
		arg := func() []field {
			j := i + 1
			for j < len(qs) && !qualifierWords[strings.ToLower(qs[j].text)] {
				j++
			}
			return qs[i+1 : j]
		}
		switch word {
		case "in":
			if i+1 >= len(qs) {
				return missing("time zone after \"in\"; want an IANA name such as Europe/London")
			}
			if err := p.setZone(qs[i+1].text, qs[i+1].off); err != nil {
				return err
			}
			i += 2
		case "dst":
			n, err := p.dstQualifier(qs[i:])
			if err != nil {
				return err
			}
			i += n
		case "using":
			a := arg()
			if err := p.using(q, a); err != nil {
				return err
			}
			i += 1 + len(a)
		case "adjust":
			a := arg()
			if err := p.adjustQualifier(q, a); err != nil {
				return err
			}
			i += 1 + len(a)
		case "except":
			a := arg()
			if err := p.except(q, a); err != nil {
				return err
			}
			i += 1 + len(a)
		case "starting", "ending":
			a := arg()
			k := 0
			if word == "ending" {
				k = 1
			}
			if p.bounds[k] != nil {
				return &Error{Offset: q.off, Msg: word + " is given twice"}
			}
			b, err := parseBound(q, a, len(p.expr))
			if err != nil {
				return err
			}
			p.bounds[k] = b
			i += 1 + len(a)
		case "jitter":
			a := arg()
			if len(a) == 0 {
				return missing("duration after \"jitter\", such as jitter 5m")
			}
			if len(a) > 1 {
				return &Error{Offset: a[1].off, Msg: "unexpected " + quote(a[1].text) + " after jitter DURATION; " + wantQualifier}
			}
			if p.spec.jitter != 0 {
				return &Error{Offset: q.off, Msg: "jitter is given twice"}
			}
			d, err := parseDuration(a[0].text, a[0].off)
			if err != nil {
				return err
			}
			// Jitter spreads the starts of jobs that share a time; a day
			// of it would move a run into another day's work.
			if d < time.Second || d%time.Second != 0 || d > maxJitter {
				return &Error{Offset: a[0].off, Msg: "jitter " + quote(a[0].text) + " must be whole seconds, at least 1s and at most 24h"}
			}
			p.spec.jitter = int64(d / time.Second)
			i += 2
		default:
			return &Error{Offset: q.off, Msg: "unexpected " + quote(q.text) + "; " + wantQualifier,
				Hint: suggest(word, []string{"in", "using", "adjust", "except", "starting", "ending", "jitter", "dst"}, nil)}
		}
	}
	return nil
}

// dstQualifier parses dst shift|skip [overlap first|both] at qs[0] and
// returns how many fields it used.
func (p *parser) dstQualifier(qs []field) (int, error) {
	if p.dstSet {
		return 0, &Error{Offset: qs[0].off, Msg: "dst is given twice"}
	}
	p.dstSet = true
	if len(qs) < 2 {
		return 0, &Error{Offset: len(p.expr), Msg: "missing policy after \"dst\"; want shift or skip"}
	}
	switch strings.ToLower(qs[1].text) {
	case "shift":
		p.dst.Gap = calendar.GapShift
	case "skip":
		p.dst.Gap = calendar.GapSkip
	default:
		return 0, &Error{Offset: qs[1].off, Msg: "unknown dst policy " + quote(qs[1].text) + "; want shift or skip", Hint: suggest(strings.ToLower(qs[1].text), []string{"shift", "skip"}, nil)}
	}
	if len(qs) < 3 || !strings.EqualFold(qs[2].text, "overlap") {
		return 2, nil
	}
	if len(qs) < 4 {
		return 0, &Error{Offset: len(p.expr), Msg: "missing policy after \"overlap\"; want first or both"}
	}
	switch strings.ToLower(qs[3].text) {
	case "first":
		p.dst.Overlap = calendar.OverlapFirst
	case "both":
		p.dst.Overlap = calendar.OverlapBoth
	default:
		return 0, &Error{Offset: qs[3].off, Msg: "unknown overlap policy " + quote(qs[3].text) + "; want first or both", Hint: suggest(strings.ToLower(qs[3].text), []string{"first", "both"}, nil)}
	}
	return 4, nil
}

// using parses CALNAME { + CALNAME }; the names may be written with or
// without spaces around "+".
func (p *parser) using(q field, a []field) error {
	if p.calsSet {
		return &Error{Offset: q.off, Msg: "using is given twice", Hint: "join calendars with +, such as using US + UK"}
	}
	p.calsSet = true
	if len(a) == 0 {
		return &Error{Offset: len(p.expr), Msg: "missing calendar name after \"using\"; want a calendar of the schedule, such as using US-NYSE"}
	}
	var cals []*calendar.Calendar
	wantName := true
	for _, f := range a {
		off := f.off
		for _, piece := range strings.SplitAfter(f.text, "+") {
			name := strings.TrimSuffix(piece, "+")
			if name != "" {
				if !wantName {
					return &Error{Offset: off, Msg: "want + between calendar names, such as using US + UK"}
				}
				c, err := p.calendar(name, off)
				if err != nil {
					return err
				}
				cals = append(cals, c)
				wantName = false
			}
			if strings.HasSuffix(piece, "+") {
				if wantName {
					return &Error{Offset: off + len(name), Msg: "want a calendar name before \"+\""}
				}
				wantName = true
			}
			off += len(piece)
		}
	}
	if wantName {
		return &Error{Offset: len(p.expr), Msg: "missing calendar name after \"+\""}
	}
	p.cals.cals, p.cals.implicit = cals, false
	return nil
}

func (p *parser) calendar(name string, off int) (*calendar.Calendar, error) {
	if c, ok := p.opt.Calendars[name]; ok && c != nil {
		return c, nil
	}
	if name == weekendsOnly.Name {
		return weekendsOnly, nil
	}
	var names []string
	for n := range p.opt.Calendars {
		names = append(names, n)
	}
	sort.Strings(names)
	want := "want a calendar defined in the schedule"
	if len(names) > 0 {
		want += " (" + strings.Join(names, ", ") + ")"
	}
	hint := suggest(strings.ToLower(name), lower(names), nil)
	if hint != "" {
		// Point at the name as the schedule spells it.
		for _, n := range names {
			if strings.Contains(hint, quote(strings.ToLower(n))) {
				hint = "did you mean " + quote(n) + "?"
			}
		}
	}
	return nil, &Error{Offset: off, Msg: "unknown calendar " + quote(name) + "; " + want, Hint: hint}
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

var adjustWords = map[string]adjustment{
	"following": adjFollowing, "preceding": adjPreceding, "modified following": adjModFollowing,
	"modified preceding": adjModPreceding, "skip": adjSkip, "none": adjNone,
}

func (p *parser) adjustQualifier(q field, a []field) error {
	if p.adjSet {
		return &Error{Offset: q.off, Msg: "adjust is given twice"}
	}
	p.adjSet = true
	const want = "want following, preceding, modified following, modified preceding, skip or none"
	if len(a) == 0 {
		return &Error{Offset: len(p.expr), Msg: "missing convention after \"adjust\"; " + want}
	}
	words := make([]string, len(a))
	for i, f := range a {
		words[i] = strings.ToLower(f.text)
	}
	conv, ok := adjustWords[strings.Join(words, " ")]
	if !ok {
		bad := a[0]
		if words[0] == "modified" && len(a) > 1 {
			bad = a[1]
		}
		if len(a) > 2 || len(a) == 2 && words[0] != "modified" {
			bad = a[len(a)-1]
		}
		return &Error{Offset: bad.off, Msg: "unknown adjustment " + quote(bad.text) + "; " + want,
			Hint: suggest(strings.ToLower(bad.text), []string{"following", "preceding", "modified", "skip", "none"}, nil)}
	}
	p.spec.adjust = conv
	return nil
}

func (p *parser) except(q field, a []field) error {
	if len(a) == 0 {
		return &Error{Offset: len(p.expr), Msg: "missing holidays or on DATE after \"except\""}
	}
	switch strings.ToLower(a[0].text) {
	case "holidays":
		if len(a) > 1 {
			return &Error{Offset: a[1].off, Msg: "unexpected " + quote(a[1].text) + " after except holidays; " + wantQualifier}
		}
		p.spec.exceptH = true
		return nil
	case "on":
	default:
		return &Error{Offset: a[0].off, Msg: "unexpected " + quote(a[0].text) + " after except; want holidays or on DATE[,DATE…]", Hint: suggest(strings.ToLower(a[0].text), []string{"holidays", "on"}, nil)}
	}
	if len(a) == 1 {
		return &Error{Offset: len(p.expr), Msg: "missing date after \"except on\"; want YYYY-MM-DD"}
	}
	for _, f := range a[1:] {
		off := f.off
		for _, ds := range strings.Split(f.text, ",") {
			if ds != "" {
				d, err := calendar.ParseDate(ds)
				if err != nil || !d.Valid() {
					return &Error{Offset: off, Msg: "bad date " + quote(ds) + " after except on; want YYYY-MM-DD"}
				}
				p.spec.exceptD = append(p.spec.exceptD, d.Days())
			}
			off += len(ds) + 1
		}
	}
	slices.Sort(p.spec.exceptD)
	p.spec.exceptD = slices.Compact(p.spec.exceptD)
	return nil
}

// parseBound parses starting/ending DATETIME | DATE [TIME].
func parseBound(q field, a []field, end int) (*bound, error) {
	word := strings.ToLower(q.text)
	if len(a) == 0 {
		return nil, &Error{Offset: end, Msg: "missing date after " + quote(word) + "; want YYYY-MM-DD, YYYY-MM-DD HH:MM or an RFC 3339 time"}
	}
	if len(a) > 2 {
		return nil, &Error{Offset: a[2].off, Msg: "unexpected " + quote(a[2].text) + " after " + word + " DATETIME; " + wantQualifier}
	}
	b := &bound{off: a[0].off}
	if t, err := time.Parse(time.RFC3339, a[0].text); err == nil {
		if len(a) == 2 {
			return nil, &Error{Offset: a[1].off, Msg: "unexpected " + quote(a[1].text) + " after an RFC 3339 time"}
		}
		b.instant, b.abs = t.Unix(), true
		return b, nil
	}
	ds, ts, hasT := strings.Cut(a[0].text, "T")
	if !hasT {
		ds, ts, hasT = strings.Cut(a[0].text, "t")
	}
	d, err := calendar.ParseDate(ds)
	if err != nil || !d.Valid() {
		return nil, &Error{Offset: a[0].off, Msg: "bad date " + quote(a[0].text) + " after " + word + "; want YYYY-MM-DD, YYYY-MM-DD HH:MM or an RFC 3339 time"}
	}
	b.wall.Date = d
	toff := a[0].off + len(ds) + 1
	switch {
	case hasT && len(a) == 2:
		return nil, &Error{Offset: a[1].off, Msg: "unexpected " + quote(a[1].text) + " after " + word + " DATETIME"}
	case !hasT && len(a) == 2:
		ts, toff = a[1].text, a[1].off
	case !hasT:
		b.date = true
		return b, nil
	}
	sec, ok := parseClock(ts)
	if !ok {
		return nil, &Error{Offset: toff, Msg: "bad time " + quote(ts) + " after " + word + "; want HH:MM[:SS], 9am, noon or midnight"}
	}
	b.wall.Hour, b.wall.Minute, b.wall.Second = sec/3600, sec/60%60, sec%60
	return b, nil
}

// resolve returns the bound's instant: the first instant of the wall time
// (or of the day) for starting, the last one for ending.
func (b *bound) resolve(loc *time.Location, dst calendar.DSTPolicy, isEnd bool) int64 {
	if b.abs {
		return b.instant
	}
	w := b.wall
	if b.date && isEnd {
		// ending DATE includes the whole date: up to the next midnight.
		w = calendar.Wall{Date: w.Date.AddDays(1)}
		return calendar.Resolve(w, loc).Start().Unix() - 1
	}
	r := calendar.Resolve(w, loc)
	if isEnd {
		if r.Kind == calendar.Overlap {
			return r.Fold1.Unix()
		}
		return r.Fold0.Unix()
	}
	return r.Start().Unix()
}

func (p *parser) finish() error {
	s := p.spec
	s.loc, s.dst = p.loc, p.dst
	s.zoneSet, s.dstSet = p.zoneSet, p.dstSet
	for _, o := range p.onceWall {
		a, b, n := calendar.Resolve(o.wall, s.loc).Instants(s.dst)
		if n == 0 {
			return &Error{Offset: o.off, Msg: "once " + o.wall.String() + " never fires: the clocks skip it in " + s.loc.String() + " and dst is skip"}
		}
		s.once = append(s.once, a.Unix())
		if n == 2 {
			s.once = append(s.once, b.Unix())
		}
	}
	if b := p.bounds[0]; b != nil {
		s.start, s.hasStart = b.resolve(s.loc, s.dst, false), true
	}
	if b := p.bounds[1]; b != nil {
		s.end, s.hasEnd = b.resolve(s.loc, s.dst, true), true
		if s.hasStart && s.end < s.start {
			return &Error{Offset: b.off, Msg: "trigger never fires: ending is before starting"}
		}
	}
	rules := s.rules[:0]
	for _, r := range s.rules {
		st, _ := r.times.(*stepTimes)
		if r.elapsed && s.hasStart {
			// An elapsed-time cadence: start + k·step, whatever the zone
			// does (docs/triggers.md#cadences-and-windows).
			g := grid{every: st.step, phase: ((s.start % st.step) + st.step) % st.step, english: true}
			if _, all := r.days.(allDays); !all {
				g.days = r.days
			}
			s.grids = append(s.grids, g)
			continue
		}
		if r.elapsed && 86400%st.step != 0 {
			return &Error{Offset: r.off, Msg: "every " + durText(st.step) + " does not divide a day into equal steps",
				Hint: "add a window such as \"between 9am-5pm\", or \"starting DATETIME\" for an elapsed-time cadence"}
		}
		if r.text == "" && selectorNeverFires(r.days) {
			return &Error{Offset: r.off, Msg: "trigger never fires: no date matches this clause's days",
				Hint: "a day that a month does not have is not moved; use \"last day of month\" for month-end"}
		}
		rules = append(rules, r)
	}
	s.rules = rules
	return nil
}
