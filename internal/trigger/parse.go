package trigger

import (
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/calendar"
)

// ParseSpec is Parse returning the concrete *Spec. Errors are *Error.
func ParseSpec(expr string, opt Options) (*Spec, error) {
	p := parser{expr: expr, loc: opt.Location, dst: opt.DST}
	if p.loc == nil {
		p.loc = time.UTC
	}
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
	loc      *time.Location
	zoneSet  bool
	dst      calendar.DSTPolicy
	dstSet   bool
	spec     *Spec
	onceWall []onceWall
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
	p.spec = &Spec{}
	rest, base := p.expr, 0
	if strings.TrimSpace(rest) == "" {
		return &Error{Offset: 0, Msg: "empty trigger; want cron fields such as \"*/15 7-9 * * 1-5\" or a descriptor such as @daily"}
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
					return &Error{Offset: t.off, Msg: "qualifier " + strconv.Quote(t.text) + " must come after the last body", Hint: "qualifiers apply to the whole spec"}
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
		return &Error{Offset: off, Msg: "a spec has one time zone; " + strconv.Quote(name) + " is a second one", Hint: "use two triggers for two zones"}
	}
	if name == "" || strings.EqualFold(name, "local") {
		return &Error{Offset: off, Msg: "missing time zone; want an IANA name such as Europe/London or UTC"}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return &Error{Offset: off, Msg: "unknown time zone " + strconv.Quote(name) + "; want an IANA name such as Europe/London or UTC"}
	}
	p.loc, p.zoneSet = loc, true
	return nil
}

// body compiles one cron or descriptor body; end is the offset just after
// it, for errors about something missing.
func (p *parser) body(fs []field, end int) error {
	if strings.HasPrefix(fs[0].text, "@") {
		return p.descriptor(fs, end)
	}
	switch {
	case len(fs) == 5 || len(fs) == 6:
		r, err := parseCron(fs)
		if err != nil {
			return err
		}
		p.spec.rules = append(p.spec.rules, r)
		return nil
	case isWord(fs[0].text):
		return &Error{Offset: fs[0].off, Msg: "unknown trigger form starting " + strconv.Quote(fs[0].text) + "; want 5 or 6 cron fields or a descriptor such as @daily",
			Hint: "the English form of TRIGGERS.md is not supported yet"}
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

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return len(s) > 3 // three letters could be a day or month name
}

var descriptors = map[string]string{
	"@yearly":    "0 0 1 1 *",
	"@annually":  "0 0 1 1 *",
	"@quarterly": "0 0 1 1,4,7,10 *",
	"@monthly":   "0 0 1 * *",
	"@weekly":    "0 0 * * 0", // Sunday, as in cron (TRIGGERS.md §4.4)
	"@daily":     "0 0 * * *",
	"@midnight":  "0 0 * * *",
	"@hourly":    "0 * * * *",
}

var descriptorNames = []string{"@yearly", "@annually", "@quarterly", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every", "@once"}

func (p *parser) descriptor(fs []field, end int) error {
	name := strings.ToLower(fs[0].text)
	if c, ok := descriptors[name]; ok {
		if len(fs) > 1 {
			return &Error{Offset: fs[1].off, Msg: "unexpected " + strconv.Quote(fs[1].text) + " after " + fs[0].text}
		}
		r, err := parseCron(tokens(c, 0))
		if err != nil {
			return &Error{Offset: fs[0].off, Msg: "internal: descriptor " + name + ": " + err.Error()}
		}
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
	return &Error{Offset: fs[0].off, Msg: "unknown descriptor " + strconv.Quote(fs[0].text) + "; want @yearly, @annually, @quarterly, @monthly, @weekly, @daily, @midnight, @hourly, @every or @once",
		Hint: suggest(name, descriptorNames, nil)}
}

func (p *parser) every(fs []field, end int) error {
	if len(fs) < 2 {
		return &Error{Offset: end, Msg: "@every needs a duration, such as @every 90m or @every 1h/15m"}
	}
	if len(fs) > 2 {
		return &Error{Offset: fs[2].off, Msg: "unexpected " + strconv.Quote(fs[2].text) + " after @every DURATION[/PHASE]"}
	}
	dt, pt, hasPhase := strings.Cut(fs[1].text, "/")
	every, err := parseDuration(dt, fs[1].off)
	if err != nil {
		return err
	}
	if every < time.Second || every%time.Second != 0 {
		return &Error{Offset: fs[1].off, Msg: "@every interval " + strconv.Quote(dt) + " must be whole seconds, at least 1s"}
	}
	var phase time.Duration
	if hasPhase {
		poff := fs[1].off + len(dt) + 1
		if phase, err = parseDuration(pt, poff); err != nil {
			return err
		}
		if phase%time.Second != 0 || phase >= every {
			return &Error{Offset: poff, Msg: "@every phase " + strconv.Quote(pt) + " must be whole seconds and less than the interval " + dt}
		}
	}
	p.spec.grids = append(p.spec.grids, grid{every: int64(every / time.Second), phase: int64(phase / time.Second)})
	return nil
}

// parseDuration is time.ParseDuration plus a leading day count: 1d,
// 1d12h, 90m.
func parseDuration(s string, off int) (time.Duration, error) {
	bad := &Error{Offset: off, Msg: "bad duration " + strconv.Quote(s) + "; want a positive duration such as 90m, 1h30m or 1d"}
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
		return &Error{Offset: fs[3].off, Msg: "unexpected " + strconv.Quote(fs[3].text) + " after @once DATETIME"}
	}
	if t, err := time.Parse(time.RFC3339, fs[1].text); err == nil {
		if len(fs) == 3 {
			return &Error{Offset: fs[2].off, Msg: "unexpected " + strconv.Quote(fs[2].text) + " after an RFC 3339 time"}
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
		return &Error{Offset: fs[2].off, Msg: "unexpected " + strconv.Quote(fs[2].text) + " after @once DATETIME"}
	}
	d, err := calendar.ParseDate(ds)
	if err != nil {
		return &Error{Offset: fs[1].off, Msg: "bad date " + strconv.Quote(ds) + "; want YYYY-MM-DD"}
	}
	sec, ok := parseClock(ts)
	if !ok {
		return &Error{Offset: toff, Msg: "bad time " + strconv.Quote(ts) + "; want HH:MM[:SS], 9am, noon or midnight (or an RFC 3339 time with an offset)"}
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

func (p *parser) qualifiers(qs []field) error {
	for i := 0; i < len(qs); {
		q := qs[i]
		switch strings.ToLower(q.text) {
		case "in":
			if i+1 >= len(qs) {
				return &Error{Offset: len(p.expr), Msg: "missing time zone after \"in\"; want an IANA name such as Europe/London"}
			}
			if err := p.setZone(qs[i+1].text, qs[i+1].off); err != nil {
				return err
			}
			i += 2
		case "dst":
			if p.dstSet {
				return &Error{Offset: q.off, Msg: "dst is given twice"}
			}
			p.dstSet = true
			if i+1 >= len(qs) {
				return &Error{Offset: len(p.expr), Msg: "missing policy after \"dst\"; want shift or skip"}
			}
			switch strings.ToLower(qs[i+1].text) {
			case "shift":
				p.dst.Gap = calendar.GapShift
			case "skip":
				p.dst.Gap = calendar.GapSkip
			default:
				return &Error{Offset: qs[i+1].off, Msg: "unknown dst policy " + strconv.Quote(qs[i+1].text) + "; want shift or skip", Hint: suggest(strings.ToLower(qs[i+1].text), []string{"shift", "skip"}, nil)}
			}
			i += 2
			if i < len(qs) && strings.EqualFold(qs[i].text, "overlap") {
				if i+1 >= len(qs) {
					return &Error{Offset: len(p.expr), Msg: "missing policy after \"overlap\"; want first or both"}
				}
				switch strings.ToLower(qs[i+1].text) {
				case "first":
					p.dst.Overlap = calendar.OverlapFirst
				case "both":
					p.dst.Overlap = calendar.OverlapBoth
				default:
					return &Error{Offset: qs[i+1].off, Msg: "unknown overlap policy " + strconv.Quote(qs[i+1].text) + "; want first or both", Hint: suggest(strings.ToLower(qs[i+1].text), []string{"first", "both"}, nil)}
				}
				i += 2
			}
		default:
			if qualifierWords[strings.ToLower(q.text)] {
				return &Error{Offset: q.off, Msg: "qualifier " + strconv.Quote(q.text) + " is not supported yet; want in ZONE or dst shift|skip [overlap first|both]"}
			}
			return &Error{Offset: q.off, Msg: "unexpected " + strconv.Quote(q.text) + "; want in ZONE or dst shift|skip [overlap first|both]"}
		}
	}
	return nil
}

func (p *parser) finish() error {
	s := p.spec
	s.loc, s.dst = p.loc, p.dst
	for _, o := range p.onceWall {
		a, b, n := calendar.Resolve(o.wall, s.loc).Instants(s.dst)
		if n == 0 {
			return &Error{Offset: o.off, Msg: "@once " + o.wall.String() + " never fires: the clocks skip it in " + s.loc.String() + " and dst is skip"}
		}
		s.once = append(s.once, a.Unix())
		if n == 2 {
			s.once = append(s.once, b.Unix())
		}
	}
	return nil
}
