package schedule

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zones must load on hosts without a zoneinfo database

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/trigger"
	"gopkg.in/yaml.v3"
)

// Top-level keys. ConfigKeys belong to talon.yaml (internal/config) and
// are skipped here, so the quick start can keep config and schedule in one
// file; internal/config skips the schedule keys in turn.
var (
	scheduleKeys = []string{"calendars", "resources", "jobs"}
	// ConfigKeys are the top-level keys of talon.yaml that a schedule file
	// may contain and the schedule loader ignores.
	ConfigKeys = []string{"state", "schedule", "listen", "advertise_url", "tls", "auth", "executors", "logs", "node", "lease", "insecure"}
	// Keys are the top-level keys of a schedule.
	Keys = scheduleKeys

	jobKeys = []string{
		"description", "period", "timezone", "environment", "triggers",
		"command", "env", "dir", "params", "poll", "timeout", "retries",
		"catchup", "catchup_window", "constraints", "resources", "executor",
		"priority", "schedule", "artifacts", "group", "function", "host", "ssh",
	}
	sshJobKeys   = []string{"user", "key_file", "port"}
	calendarKeys = []string{"weekend", "holidays", "extra_business_days", "through"}
	resourceKeys = []string{"capacity", "attributes", "per"}
	requestKeys  = []string{"path", "count", "where"}
	triggerKeys  = []string{"schedule", "after", "period", "kind"}
	periodKeys   = []string{"type", "calendar"}
	retryKeys    = []string{"max", "delay", "timeouts"}
)

// nameRE is the rule for job, calendar and environment names: lowercase
// so they read the same in URLs, file names, period keys and
// TALON_JOB, and free of ':' and '/' which period keys use as separators.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// maxName bounds names so they fit comfortably in keys and columns.
const maxName = 128

// calNameRE is the rule for calendar names, the trigger grammar's CALNAME
// (`using US-NYSE`): case matters, and the trigger parser looks names up
// exactly as written.
var calNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// resourceRE is the rule for resource paths: non-empty segments of
// letters, digits, '_', '.' and '-' joined by '/'. Requests may also use
// the glob characters * and ?.
var (
	resourceRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	requestRE  = regexp.MustCompile(`^[A-Za-z0-9_.*?-]+(/[A-Za-z0-9_.*?-]+)*$`)
)

// Options are what a schedule is checked against beyond its own files.
type Options struct {
	// Executors names the executors a job may use: those the program
	// has. A job naming another, or relying on the default "local" when
	// it is not among them, is an error. The loader imports no executor;
	// its caller knows which exist.
	Executors []string
	// Functions, when not nil, names the Go functions inprocess jobs may
	// run (the program's registered ones); a job naming another is an
	// error. Nil: not checked here (an unknown name fails the run when
	// it starts), as offline validation cannot know them.
	Functions []string
}

// Load reads a schedule from files and directories. A directory
// contributes every *.yaml and *.yml file below it, recursively, in
// lexical order. All files form one schedule: a job, calendar or resource
// may be defined in only one of them, and may refer to ones defined in
// others.
//
// When the schedule is invalid, the error is an ErrorList holding every
// problem found, sorted by position. Trouble reading the files is
// returned as a plain wrapped error.
func Load(opt Options, paths ...string) (*Schedule, error) {
	if len(paths) == 0 {
		return nil, errors.New("load schedule: no files given")
	}
	return LoadAll(opt, nil, paths)
}

// Text is schedule YAML a program holds in memory, loaded with files as
// part of one schedule.
type Text struct {
	// Name is what positions in errors call it.
	Name string
	Data []byte
	// Generated marks text a program made (EncodeJob): its errors name
	// Name without a line and column, which would point into text no
	// one wrote.
	Generated bool
}

// LoadAll reads a schedule from files and directories, as Load does —
// found in fsys (an embed.FS, say), or on disk when fsys is nil — and
// from texts: all of them form one schedule. Errors are as for Load.
func LoadAll(opt Options, fsys fs.FS, paths []string, texts ...Text) (*Schedule, error) {
	if len(paths) == 0 && len(texts) == 0 {
		return nil, errors.New("load schedule: nothing to load")
	}
	stat, walk, read := os.Stat, filepath.WalkDir, os.ReadFile
	if fsys != nil {
		stat = func(name string) (fs.FileInfo, error) { return fs.Stat(fsys, name) }
		walk = func(root string, fn fs.WalkDirFunc) error { return fs.WalkDir(fsys, root, fn) }
		read = func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) }
	}
	var files []string
	for _, p := range paths {
		fi, err := stat(p)
		if err != nil {
			return nil, fmt.Errorf("load schedule: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = walk(p, func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				found = append(found, name)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load schedule %s: %w", p, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("load schedule %s: no .yaml or .yml files in it", p)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	l := newLoader(opt)
	seen := map[string]bool{}
	for _, name := range files {
		if seen[name] {
			continue // a file named twice, or inside a directory also named
		}
		seen[name] = true
		data, err := read(name)
		if err != nil {
			return nil, fmt.Errorf("load schedule: %w", err)
		}
		l.file(name, data)
	}
	generated := map[string]bool{}
	for _, t := range texts {
		l.file(t.Name, t.Data)
		generated[t.Name] = t.Generated
	}
	s, err := l.finish()
	var list ErrorList
	if errors.As(err, &list) && len(generated) > 0 {
		for _, e := range list {
			if generated[e.Pos.File] {
				e.Pos.Line, e.Pos.Col = 0, 0
			}
		}
	}
	return s, err
}

// LoadBytes reads a schedule from one file's contents; name is used in
// positions. Errors are as for Load.
func LoadBytes(opt Options, name string, data []byte) (*Schedule, error) {
	l := newLoader(opt)
	l.file(name, data)
	return l.finish()
}

type loader struct {
	opt       Options
	errs      ErrorList
	seen      map[Error]bool // to drop repeats, as aliases visit nodes again
	zones     map[string]*time.Location
	files     []string
	jobs      map[string]*jobDraft
	calendars map[string]*calDraft
	resources map[string]*resDraft

	// Shared by the jobs: the constraint kinds, compiled triggers by
	// expression and zone (see compileTrigger), and one copy of each
	// short string many jobs repeat (zones, commands, schedules).
	kinds   []string
	trigs   map[trigKey]trigResult
	strings map[string]string
	// knownRes is the declared resources and their namespaces, sorted,
	// for hints; built at the first unknown resource.
	knownRes []string
}

type trigKey struct {
	expr string
	loc  *time.Location
}

type trigResult struct {
	t   trigger.Trigger
	err error
}

// intern returns one shared copy of v: a hundred thousand jobs in one
// zone hold one "Europe/London", not a hundred thousand.
func (l *loader) intern(v string) string {
	if len(v) > 64 {
		return v // long strings rarely repeat; not worth the map
	}
	if c, ok := l.strings[v]; ok {
		return c
	}
	if l.strings == nil {
		l.strings = map[string]string{}
	}
	l.strings[v] = v
	return v
}

func (l *loader) constraintKinds() []string {
	if l.kinds == nil {
		l.kinds = constraint.Kinds()
	}
	return l.kinds
}

type jobDraft struct {
	job     *Job
	s       scope // job "name": …
	key     mark  // the name, for "defined twice"
	calName string
	calNode *yaml.Node
	trig    []mark     // per trigger: its schedule or after value
	refs    []ref      // jobs named by after constraints
	res     []reqDraft // resource requests
	ids     []string   // the triggers' IDs before any "#n"
}

type reqDraft struct {
	req      resource.Request
	key, val *yaml.Node // the path and the count, for errors
}

type ref struct {
	name string
	node *yaml.Node
	s    scope
}

type calDraft struct {
	cal *calendar.Calendar
	pos Pos
}

type resDraft struct {
	res Resource
	pos Pos
}

// add records e unless it repeats an earlier error or the list is full.
func (l *loader) add(e *Error) {
	if l.seen[*e] {
		return
	}
	l.seen[*e] = true
	if len(l.errs) == maxErrors {
		e = &Error{Pos: e.Pos, Msg: fmt.Sprintf("too many errors; stopped after %d", maxErrors)}
	}
	if len(l.errs) <= maxErrors {
		l.errs = append(l.errs, e)
	}
}

func newLoader(opt Options) *loader {
	return &loader{
		opt:       opt,
		seen:      map[Error]bool{},
		jobs:      map[string]*jobDraft{},
		calendars: map[string]*calDraft{},
		resources: map[string]*resDraft{},
	}
}

// file reads one file's documents into the loader's drafts.
func (l *loader) file(name string, data []byte) {
	l.files = append(l.files, name)
	if sp := splitJobs(data); sp != nil && l.fileInChunks(name, data, sp) {
		return
	}
	f := &file{name: name, src: data}
	docs, perr := parseDocs(f)
	if perr != nil {
		l.add(perr)
	}
	l.docs(scope{l: l, f: f}, docs, nil, nil)
}

// docs reads a file's documents. The value of the top-level key jobsKey,
// if not nil, is read by jobs instead (see fileInChunks); docs reports
// false as soon as jobs does.
func (l *loader) docs(top scope, docs []*yaml.Node, jobsKey *yaml.Node, jobs func() bool) bool {
	for _, doc := range docs {
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // an empty document
		}
		root := deref(doc.Content[0])
		if root.Kind != yaml.MappingNode {
			top.errf(doc.Content[0], "want jobs:, calendars: or resources:", "want a mapping at the top level, not a %s", kindName(root))
			continue
		}
		for _, p := range top.pairs(root) {
			switch {
			case p.name == "jobs" && jobsKey != nil && p.key == jobsKey:
				if !jobs() {
					return false
				}
			case p.name == "jobs":
				l.jobsSection(top, p.val)
			case p.name == "calendars":
				l.calendarsSection(top, p.val)
			case p.name == "resources":
				l.resourcesSection(top, p.val)
			case contains(ConfigKeys, p.name):
				// talon.yaml's business; see internal/config.
			case strings.HasPrefix(p.name, "x-"):
				// Extension keys hold anchors for merge keys, as in
				// Compose files: `x-defaults: &d {poll: 5m}`.
			default:
				top.errf(p.key, didYouMean(p.name, append(append([]string{}, scheduleKeys...), ConfigKeys...)), "unknown key %s", quote(p.name))
			}
		}
	}
	return true
}

// executorHint suggests the executor nearest to name, else lists them.
func executorHint(name string, names []string) string {
	if hint := didYouMean(name, names); hint != "" {
		return hint
	}
	return "want " + executorList(names)
}

func executorList(names []string) string {
	switch len(names) {
	case 0:
		return "an executor, but none is available"
	case 1:
		return names[0]
	}
	return "one of " + strings.Join(names, ", ")
}

// checkName reports a name that breaks nameRE, with a hint.
func checkName(s scope, n *yaml.Node, what, name string) bool {
	if nameRE.MatchString(name) && len(name) <= maxName {
		return true
	}
	hint := "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit"
	if low := strings.ToLower(name); low != name && nameRE.MatchString(low) {
		hint = fmt.Sprintf("did you mean %s?", quote(low))
	}
	if len(name) > maxName {
		hint = fmt.Sprintf("at most %d characters", maxName)
	}
	s.errf(n, hint, "invalid %s name %s", what, quote(name))
	return false
}

// checkCalName reports a calendar name that breaks calNameRE.
func checkCalName(s scope, n *yaml.Node, name string) {
	if calNameRE.MatchString(name) && len(name) <= maxName {
		return
	}
	hint := "use letters, digits, '_' and '-', starting with a letter, as in US-NYSE"
	if len(name) > maxName {
		hint = fmt.Sprintf("at most %d characters", maxName)
	}
	s.errf(n, hint, "invalid calendar name %s", quote(name))
}

func (l *loader) mapping(s scope, n *yaml.Node, what string) []pair {
	if isNull(n) {
		return nil
	}
	if deref(n).Kind != yaml.MappingNode {
		s.errf(n, "", "want a mapping of %s, not a %s", what, kindName(deref(n)))
		return nil
	}
	return s.pairs(n)
}

func (l *loader) jobsSection(top scope, n *yaml.Node) {
	s := top.sub("jobs")
	for _, p := range l.mapping(s, n, "job names to jobs") {
		l.jobEntry(top, p)
	}
}

// jobEntry reads one entry of jobs:.
func (l *loader) jobEntry(top scope, p pair) {
	// A bad name is reported, and the job's body is still checked:
	// the schedule is invalid either way, and one edit should not
	// uncover a second round of errors.
	checkName(top, p.key, "job", p.name)
	js := scope{l: l, f: top.f, job: p.name}
	if first, ok := l.jobs[p.name]; ok {
		top.errf(p.key, "", "job %s defined twice (first at %s)", quote(p.name), first.s.pos(first.key.node()))
		return
	}
	d := &jobDraft{s: js, key: markOf(p.key)}
	l.jobs[p.name] = d
	l.job(d, p.name, p.val)
}

func (l *loader) calendarsSection(top scope, n *yaml.Node) {
	s := top.sub("calendars")
	for _, p := range l.mapping(s, n, "calendar names to calendars") {
		checkCalName(top, p.key, p.name) // and check the body all the same
		if first, ok := l.calendars[p.name]; ok {
			top.errf(p.key, "", "calendar %s defined twice (first at %s)", quote(p.name), first.pos)
			continue
		}
		cs := scope{l: l, f: top.f, where: fmt.Sprintf("calendar %s: ", quote(p.name))}
		cal := &calendar.Calendar{Name: p.name, Weekend: []time.Weekday{time.Saturday, time.Sunday}}
		l.calendars[p.name] = &calDraft{cal: cal, pos: top.pos(p.key)}
		if isNull(p.val) {
			continue
		}
		fs := cs.fields(p.val, calendarKeys, "calendar settings")
		if f, ok := fs.get("weekend"); ok {
			cal.Weekend = weekdays(cs.sub("weekend"), f.val)
			days := map[time.Weekday]bool{}
			for _, d := range cal.Weekend {
				days[d] = true
			}
			if len(days) == 7 {
				// Nothing would ever be a business day (bar extra days), so
				// looking for the next one could never end.
				cs.sub("weekend").errf(f.val, "", "every day is a weekend day")
			}
		}
		if f, ok := fs.get("holidays"); ok {
			cal.Holidays = dates(cs.sub("holidays"), f.val)
		}
		if f, ok := fs.get("extra_business_days"); ok {
			cal.ExtraBusinessDays = dates(cs.sub("extra_business_days"), f.val)
		}
		if f, ok := fs.get("through"); ok {
			ts := cs.sub("through")
			if v, ok := ts.str(f.val); ok {
				if d, ok := parseDate(ts, f.val, v); ok {
					cal.Through = d
				}
			}
		}
	}
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func weekdays(s scope, n *yaml.Node) []time.Weekday {
	out := []time.Weekday{}
	dn := deref(n)
	if dn.Kind != yaml.SequenceNode {
		s.errf(n, "", "want a list of days like [sat, sun], not a %s", kindName(dn))
		return out
	}
	for _, it := range dn.Content {
		v, ok := s.str(it)
		if !ok {
			continue
		}
		low := strings.ToLower(v)
		if len(low) > 3 {
			// Accept full names: "saturday" → "sat".
			for short, wd := range weekdayNames {
				if low == strings.ToLower(wd.String()) {
					low = short
				}
			}
		}
		wd, ok := weekdayNames[low]
		if !ok {
			s.errf(it, "want mon, tue, wed, thu, fri, sat or sun", "unknown day %s", quote(v))
			continue
		}
		out = append(out, wd)
	}
	return out
}

// maxRange bounds a date range, so a typo in a year cannot expand into
// millions of holidays.
const maxRange = 3660

// dates reads a list of dates; an item "2026-12-24..2026-12-31" is the
// range of days from the first to the last, both included.
func dates(s scope, n *yaml.Node) []calendar.Date {
	var out []calendar.Date
	vals, _ := s.strs(n, "a list of dates like [2026-12-25, 2026-12-28..2026-12-31]")
	dn := deref(n)
	for i, v := range vals {
		if i >= len(dn.Content) {
			break
		}
		it := dn.Content[i]
		first, last, isRange := strings.Cut(v, "..")
		if !isRange {
			if d, ok := parseDate(s, it, v); ok {
				out = append(out, d)
			}
			continue
		}
		a, okA := parseDate(s, it, first)
		b, okB := parseDate(s, it, last)
		if !okA || !okB {
			continue
		}
		from := time.Date(a.Year, a.Month, a.Day, 12, 0, 0, 0, time.UTC)
		to := time.Date(b.Year, b.Month, b.Day, 12, 0, 0, 0, time.UTC)
		if days := int(to.Sub(from).Hours() / 24); days < 0 || days >= maxRange {
			s.errf(it, "", "range %s: want the first date on or before the last, at most %d days apart", quote(v), maxRange)
			continue
		}
		for t := from; !t.After(to); t = t.AddDate(0, 0, 1) {
			out = append(out, calendar.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()})
		}
	}
	return out
}

func parseDate(s scope, n *yaml.Node, v string) (calendar.Date, bool) {
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		s.errf(n, "", "want a date like 2026-12-25, not %s", quote(v))
		return calendar.Date{}, false
	}
	return calendar.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}, true
}

func (l *loader) resourcesSection(top scope, n *yaml.Node) {
	s := top.sub("resources")
	for _, p := range l.mapping(s, n, "resource paths to capacities") {
		if !resourceRE.MatchString(p.name) {
			top.errf(p.key, "use segments of letters, digits, '_', '.' and '-' joined by '/', like db/prod/connections", "invalid resource path %s", quote(p.name))
			continue
		}
		if first, ok := l.resources[p.name]; ok {
			top.errf(p.key, "", "resource %s defined twice (first at %s)", quote(p.name), first.pos)
			continue
		}
		if resource.IsAgentPath(p.name) {
			top.errf(p.key, "start `talon agent --name NAME` on the node instead", "resource %s: %s is where agents register themselves", quote(p.name), resource.AgentNamespace)
			continue
		}
		rs := scope{l: l, f: top.f, where: fmt.Sprintf("resource %s: ", quote(p.name))}
		r := Resource{Path: p.name}
		l.resources[p.name] = &resDraft{res: r, pos: top.pos(p.key)}
		dv := deref(p.val)
		if dv.Kind == yaml.ScalarNode {
			// Shorthand: `db/prod/connections: 4`.
			if c, ok := rs.integer(p.val, "a capacity (a whole number ≥ 0) or {capacity: N, attributes: {…}}"); ok {
				if c < 0 || c > MaxCapacity {
					rs.errf(p.val, "", "capacity: want a whole number from 0 to %d, not %d", MaxCapacity, c)
				}
				r.Capacity = c
			}
			l.resources[p.name].res = r
			continue
		}
		fs := rs.fields(p.val, resourceKeys, "resource settings")
		if fs == nil {
			continue
		}
		if f, ok := fs.get("capacity"); ok {
			if c, ok := rs.sub("capacity").integerIn(f.val, 0, MaxCapacity, fmt.Sprintf("a whole number from 0 to %d", MaxCapacity)); ok {
				r.Capacity = c
			}
		} else {
			r.Capacity = 1 // a host, a licence: one at a time
		}
		if f, ok := fs.get("per"); ok {
			if v, ok := rs.sub("per").str(f.val); ok {
				pt := talon.PeriodType(v)
				if !slices.Contains(talon.PeriodTypes, pt) || pt == talon.Oneshot {
					rs.sub("per").errf(f.val, "want hourly, daily, weekly, monthly, quarterly or yearly", "unknown period type %s", quote(v))
				} else {
					r.Per = pt
				}
			}
		}
		if f, ok := fs.get("attributes"); ok {
			as := rs.sub("attributes")
			r.Attributes = map[string]string{}
			for _, a := range l.mapping(as, f.val, "attribute names to values") {
				if v, ok := as.sub(a.name).str(a.val); ok {
					r.Attributes[a.name] = v
				}
			}
		}
		l.resources[p.name].res = r
	}
}

// job decodes one job; checks that need the whole schedule (calendars,
// other jobs, resources, triggers) wait for finish.
func (l *loader) job(d *jobDraft, name string, n *yaml.Node) {
	s := d.s
	j := &Job{Job: talon.Job{
		Name:     name,
		Period:   talon.PeriodSpec{Type: talon.Daily},
		Timezone: "UTC",
		Location: time.UTC,
		Executor: "local",
		Poll:     time.Minute,
		Catchup:  talon.CatchupLatest,
	}}
	d.job = j
	if isNull(n) {
		s.errf(d.key.node(), "", "missing command")
		return
	}
	fs := s.fields(n, jobKeys, "job settings")
	if fs == nil {
		return
	}
	if f, ok := fs.get("description"); ok {
		j.Description, _ = s.sub("description").str(f.val)
	}
	if f, ok := fs.get("period"); ok {
		l.period(d, s.sub("period"), f.val)
	}
	if f, ok := fs.get("timezone"); ok {
		ts := s.sub("timezone")
		if v, ok := ts.str(f.val); ok {
			loc, err := l.zone(v)
			if err != nil {
				ts.errf(f.val, `want an IANA name like "Europe/London" or "UTC"`, "unknown zone %s", quote(v))
			} else {
				j.Timezone, j.Location = l.intern(v), loc
			}
		}
	}
	if f, ok := fs.get("environment"); ok {
		if v, ok := s.sub("environment").str(f.val); ok && checkName(s, f.val, "environment", v) {
			j.Environment = v
		}
	}
	if f, ok := fs.get("group"); ok {
		if v, ok := s.sub("group").str(f.val); ok && checkName(s, f.val, "group", v) {
			j.Group = l.intern(v)
		}
	}
	if f, ok := fs.get("executor"); ok {
		es := s.sub("executor")
		if v, ok := es.str(f.val); ok {
			switch {
			case v == "":
				es.errf(f.val, "want "+executorList(l.opt.Executors), "missing executor name")
			case !contains(l.opt.Executors, v):
				es.errf(f.val, executorHint(v, l.opt.Executors), "unknown executor %s", quote(v))
			default:
				j.Executor = l.intern(v)
			}
		}
	} else if !contains(l.opt.Executors, j.Executor) {
		s.errf(d.key.node(), "set executor: to "+executorList(l.opt.Executors), "the default executor %q is not available", j.Executor)
	}
	cmd, hasCmd := fs.get("command")
	if hasCmd {
		cs := s.sub("command")
		const want = `a non-empty list of strings (argv), like ["/opt/bin/load", "--all"]`
		if v, ok := cs.strs(cmd.val, want); ok {
			if len(v) == 0 || v[0] == "" {
				cs.errf(cmd.val, "", "want %s", want)
			} else {
				for i := range v {
					v[i] = l.intern(v[i])
				}
				j.Command = v
			}
		}
	}
	l.function(d, fs, cmd, hasCmd)
	if f, ok := fs.get("env"); ok {
		es := s.sub("env")
		j.Env = map[string]talon.EnvValue{}
		for _, p := range l.mapping(es, f.val, "variable names to values") {
			if !envNameRE.MatchString(p.name) {
				es.errf(p.key, "use letters, digits and '_', not starting with a digit", "invalid variable name %s", quote(p.name))
				continue
			}
			if strings.HasPrefix(p.name, "TALON_") {
				es.errf(p.key, "Talon sets TALON_ variables itself", "variable %s is reserved", quote(p.name))
				continue
			}
			if v, ok := envValue(es.sub(p.name), p.val); ok {
				j.Env[p.name] = v
			}
		}
	}
	if f, ok := fs.get("dir"); ok {
		j.Dir, _ = s.sub("dir").str(f.val)
	}
	if j.Executor == "inprocess" {
		// A function runs inside the scheduler: it gets params and the
		// TALON_ variables, but no environment or directory of its own.
		for _, k := range []string{"env", "dir"} {
			if f, ok := fs.get(k); ok {
				s.errf(f.key, "pass values to a function in params", "%s has no effect with executor inprocess", k)
			}
		}
	}
	l.sshKeys(d, s, fs)
	if f, ok := fs.get("params"); ok {
		ps := s.sub("params")
		if deref(f.val).Kind != yaml.MappingNode {
			ps.errf(f.val, "", "want a mapping of names to values, not a %s", kindName(deref(f.val)))
		} else if v, ok := ps.value(f.val, 0); ok {
			j.Params = v.(map[string]any)
			if _, err := jsonMarshal(j.Params); err != nil {
				ps.errf(f.val, "", "cannot be passed as JSON: %v", err)
			}
		}
	}
	if f, ok := fs.get("poll"); ok {
		if v, ok := s.sub("poll").durationIn(f.val, MinPoll, MaxPoll, ""); ok {
			j.Poll = v
		}
	}
	if f, ok := fs.get("timeout"); ok {
		j.Timeout, _ = s.sub("timeout").durationIn(f.val, MinTimeout, MaxTimeout, "none")
	}
	if f, ok := fs.get("catchup_window"); ok {
		j.CatchupWindow, _ = s.sub("catchup_window").durationIn(f.val, MinCatchupWindow, MaxCatchupWindow, "no bound")
	}
	if f, ok := fs.get("retries"); ok {
		j.Retries = retries(s.sub("retries"), f.val)
	}
	if f, ok := fs.get("catchup"); ok {
		cs := s.sub("catchup")
		if v, ok := cs.str(f.val); ok {
			switch c := talon.CatchupPolicy(v); c {
			case talon.CatchupAll, talon.CatchupLatest, talon.CatchupNone:
				j.Catchup = c
			default:
				cs.errf(f.val, didYouMean(v, []string{"all", "latest", "none"}), "want all, latest or none, not %s", quote(v))
			}
		}
	}
	if f, ok := fs.get("priority"); ok {
		j.Priority, _ = s.sub("priority").integerIn(f.val, MinPriority, MaxPriority, fmt.Sprintf("a whole number from %d to %d", MinPriority, MaxPriority))
	}
	if f, ok := fs.get("schedule"); ok {
		// Shorthand for a single time trigger: `schedule: "@daily"`.
		if v, ok := s.sub("schedule").str(f.val); ok {
			d.addTrigger(talon.TriggerSpec{ID: "schedule:" + v, Schedule: v, Period: talon.PeriodSame}, f.val)
		}
	}
	if f, ok := fs.get("triggers"); ok {
		l.triggers(d, s.sub("triggers"), f.val)
	}
	if f, ok := fs.get("constraints"); ok {
		l.constraints(d, s, f.val)
	}
	if f, ok := fs.get("resources"); ok {
		l.requests(d, s.sub("resources"), f.val)
	}
	if f, ok := fs.get("artifacts"); ok {
		l.artifacts(d, s.sub("artifacts"), f.val)
	}
	if _, ok := fs.get("host"); !ok && j.Executor == "ssh" && !hasHostRequest(d) {
		s.errf(d.key.node(), "set host: HOST[:PORT], or request a hosts/... resource whose address attribute names it",
			"executor ssh needs a host to run on")
	}
}

// hasHostRequest reports whether the job asks for a hosts/... resource.
func hasHostRequest(d *jobDraft) bool {
	for _, rd := range d.res {
		if strings.HasPrefix(rd.req.Path, "hosts/") {
			return true
		}
	}
	return false
}

// sshKeys reads host: and ssh: {user, key_file, port}, the ssh
// executor's per-job settings; other executors refuse them.
func (l *loader) sshKeys(d *jobDraft, s scope, fs fieldSet) {
	j := d.job
	for _, k := range []string{"host", "ssh"} {
		if f, ok := fs.get(k); ok && j.Executor != "ssh" {
			s.errf(f.key, "set executor: ssh, or remove "+k+":", "%s has no effect with executor %s", k, j.Executor)
		}
	}
	if j.Executor != "ssh" {
		return
	}
	if f, ok := fs.get("host"); ok {
		hs := s.sub("host")
		if v, ok := hs.str(f.val); ok {
			if msg := checkHost(v); msg != "" {
				hs.errf(f.val, "want HOST or HOST:PORT, like batch01.example.com or 10.0.0.5:2222", "%s", msg)
			} else {
				j.Host = v
			}
		}
	}
	f, ok := fs.get("ssh")
	if !ok {
		return
	}
	ss := s.sub("ssh")
	sf := ss.fields(f.val, sshJobKeys, "ssh settings (user, key_file, port)")
	if sf == nil {
		return
	}
	o := &talon.SSHOptions{}
	if p, ok := sf.get("user"); ok {
		if v, ok := ss.sub("user").str(p.val); ok {
			if v == "" || strings.ContainsAny(v, " \t\n@/") {
				ss.sub("user").errf(p.val, "", "invalid user name %s", quote(v))
			}
			o.User = v
		}
	}
	if p, ok := sf.get("key_file"); ok {
		ks := ss.sub("key_file")
		if v, ok := ks.str(p.val); ok {
			if !filepath.IsAbs(v) {
				ks.errf(p.val, "write the key's absolute path", "%s is not an absolute path", quote(v))
			}
			o.KeyFile = v
		}
	}
	if p, ok := sf.get("port"); ok {
		if v, ok := ss.sub("port").integerIn(p.val, 1, 65535, "want a port number"); ok {
			o.Port = v
		}
	}
	j.SSH = o
}

// checkHost says what is wrong with a host: value, or "".
func checkHost(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\n/@") {
		return "invalid host " + quote(v)
	}
	if strings.Contains(v, ":") {
		h, port, err := net.SplitHostPort(v)
		if err != nil {
			if net.ParseIP(v) != nil {
				return "an IPv6 address needs brackets: [" + v + "]:22"
			}
			return "invalid host " + quote(v)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || h == "" {
			return "invalid host " + quote(v)
		}
	}
	return ""
}

// function reads which Go function an inprocess job runs: function:,
// else the first word of command: (the rest are its arguments), else the
// job's name. Only the inprocess executor runs functions, and only it
// can do without a command. With Options.Functions, the name must be
// among them, so a typo is an error here rather than a failed run.
func (l *loader) function(d *jobDraft, fs fieldSet, cmd pair, hasCmd bool) {
	s, j := d.s, d.job
	fn, hasFn := fs.get("function")
	if j.Executor != "inprocess" {
		if hasFn {
			s.errf(fn.key, "add executor: inprocess, or use command: for a program", "function applies to executor inprocess, not %s", j.Executor)
		} else if !hasCmd {
			s.errf(d.key.node(), "", "missing command")
		}
		return
	}
	node := d.key.node()
	switch {
	case hasFn && hasCmd:
		s.errf(fn.key, "function: NAME, with values in params; command: [NAME, ARGS...] is the older form", "function and command: use one")
		return
	case hasFn:
		ss := s.sub("function")
		v, ok := ss.str(fn.val)
		if !ok {
			return
		}
		if v == "" {
			ss.errf(fn.val, "", "want the name a Go function was registered under")
			return
		}
		j.Function, node = l.intern(v), fn.val
	case len(j.Command) > 0:
		j.Function, node = j.Command[0], deref(cmd.val)
		if len(node.Content) > 0 {
			node = node.Content[0]
		}
	case hasCmd:
		return // the command was reported
	default:
		j.Function = j.Name
	}
	if l.opt.Functions == nil || contains(l.opt.Functions, j.Function) {
		return
	}
	hint := didYouMean(j.Function, l.opt.Functions)
	if hint == "" {
		hint = "register it, or use one of " + strings.Join(l.opt.Functions, ", ")
		if len(l.opt.Functions) == 0 {
			hint = "register it: no function is registered"
		}
	}
	s.errf(node, hint, "unknown function %s", quote(j.Function))
}

// artifacts reads the artifacts a job declares: a mapping of names to URL
// patterns (internal/artifact), such as
// {report: "file:///data/{{period}}/report.csv"}.
func (l *loader) artifacts(d *jobDraft, s scope, n *yaml.Node) {
	j := d.job
	for _, p := range l.mapping(s, n, "artifact names to URLs") {
		if err := artifact.CheckName(p.name); err != nil {
			s.errf(p.key, "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit", "invalid artifact name %s", quote(p.name))
			continue
		}
		as := s.sub(p.name)
		v, ok := as.str(p.val)
		if !ok {
			continue
		}
		pat, err := artifact.ParsePattern(v)
		if err != nil {
			as.errf(p.val, `like "file:///data/{{period}}/report.csv"`, "%v", err)
			continue
		}
		if pat.Uses("environment") && j.Environment == "" {
			as.errf(p.val, "set the job's environment:, or leave {{environment}} out", "{{environment}}: the job has no environment")
			continue
		}
		if j.Artifacts == nil {
			j.Artifacts = map[string]string{}
		}
		j.Artifacts[p.name] = v
		j.Declared = append(j.Declared, DeclaredArtifact{Name: p.name, Pattern: pat})
	}
	sort.Slice(j.Declared, func(a, b int) bool { return j.Declared[a].Name < j.Declared[b].Name })
}

// requests decodes a job's resource requests, written as a mapping
// ({db/prod/connections: 2, hosts/linux/*: {count: 1, where: {cores: ">=16"}}})
// or a list of such entries and {path: P, count: N, where: {…}}.
func (l *loader) requests(d *jobDraft, rs scope, n *yaml.Node) {
	j := d.job
	j.Resources = map[string]int{}
	add := func(rd reqDraft) {
		rd.key, rd.val = keep(rd.key), keep(rd.val)
		j.Requests = append(j.Requests, rd.req)
		j.Resources[rd.req.Path] += rd.req.Count
		d.res = append(d.res, rd)
	}
	// one decodes one request whose path is known: v is a count or
	// {count, where}.
	one := func(path string, key, v *yaml.Node) {
		if !requestRE.MatchString(strings.ReplaceAll(path, resource.EnvironmentVar, "env")) {
			rs.errf(key, "use a path like db/prod/connections, hosts/linux/* or db/{{environment}}/connections", "invalid resource path %s", quote(path))
			return
		}
		ps := rs.sub(path)
		rd := reqDraft{req: resource.Request{Path: path, Count: 1}, key: key, val: v}
		if deref(v).Kind == yaml.MappingNode {
			fs := ps.fields(v, []string{"count", "where"}, "request settings")
			if fs == nil {
				return
			}
			if f, ok := fs.get("count"); ok {
				rd.val = f.val
				if !l.count(ps.sub("count"), f.val, &rd.req.Count) {
					return
				}
			}
			if f, ok := fs.get("where"); ok {
				if !l.where(ps.sub("where"), f.val, &rd.req) {
					return
				}
			}
			add(rd)
			return
		}
		if l.count(ps, v, &rd.req.Count) {
			add(rd)
		}
	}
	if dn := deref(n); dn != nil && dn.Kind == yaml.SequenceNode {
		for i, item := range dn.Content {
			is := rs.sub(fmt.Sprintf("[%d]", i))
			di := deref(item)
			if di.Kind != yaml.MappingNode {
				is.errf(item, "", "want {path: P, count: N} or {P: N}, not a %s", kindName(di))
				continue
			}
			ps := is.pairs(di)
			hasPath := false
			for _, p := range ps {
				hasPath = hasPath || p.name == "path"
			}
			if !hasPath {
				for _, p := range ps {
					one(p.name, p.key, p.val)
				}
				continue
			}
			fs := is.fields(item, requestKeys, "request settings")
			if fs == nil {
				continue
			}
			f, _ := fs.get("path")
			path, ok := is.sub("path").str(f.val)
			if !ok {
				continue
			}
			m := &yaml.Node{Kind: yaml.MappingNode, Line: item.Line, Column: item.Column}
			for _, k := range []string{"count", "where"} {
				if g, ok := fs.get(k); ok {
					m.Content = append(m.Content, g.key, g.val)
				}
			}
			one(path, f.val, m)
		}
		return
	}
	for _, p := range l.mapping(rs, n, "resource paths to amounts") {
		one(p.name, p.key, p.val)
	}
}

func (l *loader) count(s scope, n *yaml.Node, out *int) bool {
	c, ok := s.integerIn(n, 1, MaxCapacity, fmt.Sprintf("a whole number from 1 to %d", MaxCapacity))
	if !ok {
		return false
	}
	*out = c
	return true
}

func (l *loader) where(s scope, n *yaml.Node, r *resource.Request) bool {
	ok := true
	for _, p := range l.mapping(s, n, "attribute names to tests like \">=16\"") {
		v, vok := s.sub(p.name).str(p.val)
		if !vok {
			ok = false
			continue
		}
		f, err := resource.ParseFilter(p.name, v)
		if err != nil {
			s.sub(p.name).errf(p.val, "", "%v", err)
			ok = false
			continue
		}
		r.Where = append(r.Where, f)
	}
	sort.Slice(r.Where, func(i, k int) bool { return r.Where[i].Attr < r.Where[k].Attr })
	return ok
}

// zone loads an IANA zone once per load: reading it from the embedded
// database costs more than the rest of a job.
func (l *loader) zone(name string) (*time.Location, error) {
	if loc, ok := l.zones[name]; ok {
		return loc, nil
	}
	loc, err := loadZone(name)
	if err == nil {
		if l.zones == nil {
			l.zones = map[string]*time.Location{}
		}
		l.zones[name] = loc
	}
	return loc, err
}

// loadZone loads an IANA zone. An empty name would be UTC to
// time.LoadLocation; it is refused so a blank value is not silently UTC.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown zone %s", quote(name))
	}
	return time.LoadLocation(name)
}

var periodTypeNames = func() []string {
	out := make([]string, len(talon.PeriodTypes))
	for i, t := range talon.PeriodTypes {
		out[i] = string(t)
	}
	return out
}()

func (l *loader) period(d *jobDraft, s scope, n *yaml.Node) {
	typeNode := n
	if deref(n).Kind == yaml.MappingNode {
		fs := s.fields(n, periodKeys, "period settings")
		f, ok := fs.get("type")
		if !ok {
			s.errf(n, "want one of "+strings.Join(periodTypeNames, ", "), "missing type")
			typeNode = nil
		} else {
			typeNode = f.val
		}
		if f, ok := fs.get("calendar"); ok {
			if v, ok := s.sub("calendar").str(f.val); ok {
				d.calName, d.calNode = v, keep(f.val)
			}
		}
		s = s.sub("type")
	}
	if typeNode == nil {
		return
	}
	v, ok := s.str(typeNode)
	if !ok {
		return
	}
	if !contains(periodTypeNames, v) {
		hint := didYouMean(v, periodTypeNames)
		if hint == "" {
			hint = "want one of " + strings.Join(periodTypeNames, ", ")
		}
		s.errf(typeNode, hint, "unknown period type %s", quote(v))
		return
	}
	d.job.Period.Type = talon.PeriodType(l.intern(v))
}

func retries(s scope, n *yaml.Node) talon.RetryPolicy {
	var r talon.RetryPolicy
	if deref(n).Kind == yaml.ScalarNode {
		// Shorthand: `retries: 2` retries at once.
		if v, ok := s.integerIn(n, 0, MaxRetries, "a number of retries or {max: N, delay: 5m}"); ok {
			r.Max = v
		}
		return r
	}
	fs := s.fields(n, retryKeys, "retry settings")
	if f, ok := fs.get("max"); ok {
		ms := s.sub("max")
		if v, ok := ms.integerIn(f.val, 0, MaxRetries, fmt.Sprintf("a whole number from 0 to %d", MaxRetries)); ok {
			r.Max = v
		}
	} else if fs != nil {
		s.errf(n, "", "missing max")
	}
	if f, ok := fs.get("delay"); ok {
		r.Delay, _ = s.sub("delay").durationIn(f.val, MinRetryDelay, MaxRetryDelay, "at once")
	}
	if f, ok := fs.get("timeouts"); ok {
		r.Timeouts, _ = s.sub("timeouts").boolean(f.val)
	}
	return r
}

func (l *loader) triggers(d *jobDraft, s scope, n *yaml.Node) {
	dn := deref(n)
	if dn.Kind != yaml.SequenceNode {
		s.errf(n, "", `want a list like [{schedule: "30 6 * * 1-5"}, {after: extract}], not a %s`, kindName(dn))
		return
	}
	for _, it := range dn.Content {
		fs := s.fields(it, triggerKeys, "trigger settings")
		if fs == nil {
			continue
		}
		sched, hasSched := fs.get("schedule")
		after, hasAfter := fs.get("after")
		if hasSched == hasAfter {
			s.errf(it, "", "want exactly one of schedule or after in a trigger")
			continue
		}
		t := talon.TriggerSpec{Period: talon.PeriodSame}
		var node *yaml.Node
		if hasSched {
			v, ok := s.sub("schedule").str(sched.val)
			if !ok {
				continue
			}
			t.Schedule, t.ID, node = v, "schedule:"+v, sched.val
			if f, ok := fs.get("kind"); ok {
				if k, ok := s.sub("kind").str(f.val); ok && k != "time" {
					t.Kind, t.ID = k, k+":"+v
				}
			}
		} else {
			if f, ok := fs.get("kind"); ok {
				s.errf(f.val, "", "kind applies to schedule triggers, not after")
			}
			v, ok := s.sub("after").str(after.val)
			if !ok {
				continue
			}
			t.After, t.ID, node = v, "after:"+v, after.val
		}
		if f, ok := fs.get("period"); ok {
			ps := s.sub("period")
			if v, ok := ps.str(f.val); ok {
				switch o := talon.PeriodOffset(v); o {
				case talon.PeriodSame, talon.PeriodPrevious:
					t.Period = o
				default:
					ps.errf(f.val, didYouMean(v, []string{"same", "previous"}), "want same or previous, not %s", quote(v))
				}
			}
		}
		d.addTrigger(t, node)
	}
}

// addTrigger appends t, whose schedule or after value is node.
func (d *jobDraft) addTrigger(t talon.TriggerSpec, node *yaml.Node) {
	// IDs name triggers in run rows, so they must stay put across
	// reloads: the n-th copy of the same trigger gets "#n".
	c := 1 // a job has a few triggers: a search beats a map per job
	for _, id := range d.ids {
		if id == t.ID {
			c++
		}
	}
	d.ids = append(d.ids, t.ID)
	if c > 1 {
		t.ID = fmt.Sprintf("%s#%d", t.ID, c)
	}
	t.ID, t.Schedule, t.After = d.s.l.intern(t.ID), d.s.l.intern(t.Schedule), d.s.l.intern(t.After)
	d.job.Triggers = append(d.job.Triggers, t)
	d.trig = append(d.trig, markOf(node))
}

func (l *loader) constraints(d *jobDraft, js scope, n *yaml.Node) {
	s := js.sub("constraints")
	for _, p := range l.mapping(s, n, "constraint kinds to settings") {
		kinds := l.constraintKinds()
		if !contains(kinds, p.name) {
			hint := didYouMean(p.name, kinds)
			if hint == "" && len(kinds) > 0 {
				hint = "want one of " + strings.Join(kinds, ", ")
			}
			js.errf(p.key, hint, "unknown constraint %s", quote(p.name))
			continue
		}
		cs := js.sub("constraint " + p.name)
		v, ok := cs.value(p.val, 0)
		if !ok {
			continue
		}
		switch p.name {
		case "after":
			d.refs = append(d.refs, afterRefs(cs, p.val, true)...)
		case "artifact":
			// A plain string there is a URL pattern, not a job.
			d.refs = append(d.refs, afterRefs(cs, p.val, false)...)
		}
		c, err := constraint.Compile(p.name, v)
		if err != nil {
			// The built-in kinds name themselves ("max_running: want …",
			// "after[1]: …"); say the kind once.
			msg := err.Error()
			if rest, ok := strings.CutPrefix(msg, p.name); ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "[")) {
				js.errf(p.key, "", "constraint %s", msg)
			} else {
				cs.errf(p.key, "", "%s", msg)
			}
			continue
		}
		d.job.Constraints = append(d.job.Constraints, talon.ConstraintSpec{Kind: p.name, Value: v})
		d.job.Checks = append(d.job.Checks, c)
	}
}

// afterRefs finds the job names in an after constraint's value (a name, a
// list of names, {job: NAME, …} or a list mixing both) with their
// positions; the constraint's own factory checks the rest of the shape.
// Without names, only the job: of mappings count (the artifact
// constraint's strings are URL patterns).
func afterRefs(s scope, n *yaml.Node, names bool) []ref {
	dn := deref(n)
	var items []*yaml.Node
	if dn.Kind == yaml.SequenceNode {
		items = dn.Content
	} else {
		items = []*yaml.Node{n}
	}
	var out []ref
	for _, it := range items {
		d := deref(it)
		switch d.Kind {
		case yaml.ScalarNode:
			if names && d.ShortTag() == "!!str" {
				out = append(out, ref{name: d.Value, node: keep(it), s: s})
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(d.Content); i += 2 {
				k, v := deref(d.Content[i]), d.Content[i+1]
				if k.Value == "job" && deref(v).Kind == yaml.ScalarNode {
					out = append(out, ref{name: deref(v).Value, node: keep(v), s: s})
				}
			}
		}
	}
	return out
}

// finish runs the checks that need the whole schedule and builds it.
func (l *loader) finish() (*Schedule, error) {
	sch := &Schedule{
		ByName:    map[string]*Job{},
		Calendars: map[string]*calendar.Calendar{},
		Resources: map[string]Resource{},
		Files:     l.files,
	}
	for name, c := range l.calendars {
		sch.Calendars[name] = c.cal
	}
	for name, r := range l.resources {
		sch.Resources[name] = r.res
	}
	names := make([]string, 0, len(l.jobs))
	for name := range l.jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	calNames := sortedKeys(sch.Calendars)
	for _, name := range names {
		d := l.jobs[name]
		j := d.job
		if d.calName != "" {
			if c, ok := sch.Calendars[d.calName]; ok {
				j.Period.Calendar, j.Calendar = d.calName, c
			} else {
				hint := didYouMean(d.calName, calNames)
				if hint == "" {
					hint = "declare it under calendars: at the top level"
				}
				d.s.sub("period").sub("calendar").errf(d.calNode, hint, "unknown calendar %s", quote(d.calName))
			}
		}
		j.Times = make([]trigger.Trigger, len(j.Triggers))
		for i, t := range j.Triggers {
			if t.Schedule != "" {
				j.Times[i] = l.compileTrigger(d, d.trig[i], t, sch.Calendars)
			} else {
				l.checkRef(d.s.sub("after"), d.trig[i].node(), t.After, names)
			}
		}
		for _, r := range d.refs {
			l.checkRef(r.s, r.node, r.name, names)
		}
		l.checkResources(d, sch.Tree())
		sch.Jobs = append(sch.Jobs, j)
		sch.ByName[name] = j
	}
	l.cycles(names)
	if len(l.errs) > 0 {
		l.errs.Sort()
		return nil, l.errs
	}
	return sch, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseTrigger is trigger.Parse; a variable so tests can run before the
// trigger package understands every expression.
var parseTrigger = trigger.Parse

func (l *loader) compileTrigger(d *jobDraft, at mark, spec talon.TriggerSpec, cals map[string]*calendar.Calendar) trigger.Trigger {
	expr := spec.Schedule
	// The ID seeds jitter: per job, so jobs sharing an expression spread
	// out, and stable across reloads while the trigger is unchanged.
	opt := trigger.Options{Location: d.job.Location, Calendars: cals, ID: d.job.Name + "/" + expr}
	var t trigger.Trigger
	var err error
	if spec.Kind != "" {
		t, err = trigger.Compile(spec.Kind, expr, opt)
	} else if c, ok := l.trigs[trigKey{expr, opt.Location}]; ok {
		t, err = c.t, c.err
	} else {
		t, err = parseTrigger(expr, opt)
		// A compiled time trigger is immutable, and the same for every
		// job with the expression in the zone, unless it has jitter,
		// which the ID seeds: then each job gets its own. (Calendars and
		// DST are the load's, the same for all.) Other kinds are left
		// alone: their compile functions may keep state.
		if sp, isSpec := t.(*trigger.Spec); err != nil || (isSpec && sp.Jitter() == 0) {
			if l.trigs == nil {
				l.trigs = map[trigKey]trigResult{}
			}
			l.trigs[trigKey{expr, opt.Location}] = trigResult{t, err}
		}
	}
	if err == nil {
		return t
	}
	s, n := d.s, at.node()
	var te *trigger.Error
	if errors.As(err, &te) {
		s.errAt(s.offsetPos(n, te.Offset), te.Hint, "trigger %s: %s", quote(expr), te.Msg)
	} else {
		s.errf(n, "", "trigger %s: %v", quote(expr), err)
	}
	return nil
}

func (l *loader) checkRef(s scope, n *yaml.Node, name string, jobs []string) {
	if _, ok := l.jobs[name]; ok {
		return
	}
	s.errf(n, didYouMean(name, jobs), "unknown job %s", quote(name))
}

// checkResources reports requests that can never be met: no declared
// node matches (a node, a namespace above nodes, a glob), none that
// matches passes the where filters, or none has the capacity asked for.
// {{environment}} is resolved with the job's environment first.
func (l *loader) checkResources(d *jobDraft, tree *resource.Tree) {
	agents := 0
	for _, rd := range d.res {
		if resource.IsAgentPath(rd.req.Path) {
			agents++
		}
	}
	if d.job.Executor == "agent" && agents != 1 {
		s, at := d.s, d.key.node()
		if len(d.res) > 0 {
			s, at = d.s.sub("resources"), d.res[0].key
		}
		s.errf(at, "add resources: {"+resource.AgentNamespace+"/*: 1} (or name an agent, or filter by its labels)",
			"executor agent runs on the agent a run is allocated: ask for exactly one %s resource, not %d", resource.AgentNamespace, agents)
	}
	if len(d.res) == 0 {
		return
	}
	known := func() []string { // for hints: every node and namespace
		if l.knownRes == nil {
			seen := map[string]bool{}
			l.knownRes = []string{}
			for _, n := range tree.Nodes() {
				for q := n.Path; q != "." && q != "/" && q != ""; q = path.Dir(q) {
					if !seen[q] {
						seen[q] = true
						l.knownRes = append(l.knownRes, q)
					}
				}
			}
			sort.Strings(l.knownRes)
		}
		return l.knownRes
	}
	s := d.s.sub("resources")
	for _, rd := range d.res {
		r := rd.req
		if resource.IsAgentPath(r.Path) {
			// Agents register at run time: there is nothing to check
			// against now. The run waits for an agent that matches.
			if d.job.Executor != "agent" {
				s.errf(rd.key, "set executor: agent", "%s is for runs on agents, and this job's executor is %s", quote(r.Path), d.job.Executor)
			}
			continue
		}
		if strings.Contains(r.Path, resource.EnvironmentVar) && d.job.Environment == "" {
			s.errf(rd.key, "set environment: on the job", "%s uses %s but the job has no environment", quote(r.Path), resource.EnvironmentVar)
			continue
		}
		r = r.Resolve(d.job.Environment)
		if len(tree.Candidates(r.Path)) == 0 {
			hint := didYouMean(r.Path, known())
			if hint == "" {
				hint = "declare it under resources: at the top level"
			}
			s.errf(rd.key, hint, "unknown resource %s", quote(r.Path))
			continue
		}
		if msg := r.Satisfiable(tree); msg != "" {
			s.errf(rd.val, "", "%s", msg)
		}
		if d.job.Executor == "ssh" && strings.HasPrefix(r.Path, "hosts/") {
			// An ssh run goes to the address of the host it is given.
			for _, n := range tree.Candidates(r.Path) {
				if n.Attributes["address"] == "" {
					s.errf(rd.key, "add attributes: {address: HOST[:PORT]} to "+n.Path,
						"resource %s has no address attribute, which an ssh run needs to reach it", n.Path)
					break
				}
			}
		}
	}
}

// cycles reports each loop of completion triggers (a runs after b, b after
// a), which would run the jobs for ever. Each strongly connected component
// is reported once, as its shortest loop through its first job by name.
func (l *loader) cycles(names []string) {
	// Edge b → a when a has a trigger `after: b`: b's success starts a.
	next := map[string][]string{}
	at := map[[2]string]*yaml.Node{} // edge → the after: value making it
	for _, a := range names {
		d := l.jobs[a]
		for i, t := range d.job.Triggers {
			b := t.After
			if b == "" || l.jobs[b] == nil {
				continue
			}
			e := [2]string{b, a}
			if _, dup := at[e]; dup {
				continue
			}
			at[e] = d.trig[i].node()
			next[b] = append(next[b], a)
		}
	}
	// Only jobs on some edge can be in a loop: the others would each be
	// a component of one, and with a hundred thousand jobs the search's
	// maps were a tenth of the load.
	onEdge := map[string]bool{}
	for _, k := range sortedKeys(next) {
		sort.Strings(next[k])
		onEdge[k] = true
		for _, a := range next[k] {
			onEdge[a] = true
		}
	}
	linked := make([]string, 0, len(onEdge))
	for _, n := range names {
		if onEdge[n] {
			linked = append(linked, n)
		}
	}
	for _, comp := range sccs(linked, next) {
		inComp := map[string]bool{}
		for _, c := range comp {
			inComp[c] = true
		}
		start := comp[0]
		if len(comp) == 1 && !contains(next[start], start) {
			continue
		}
		loop := shortestLoop(start, next, inComp)
		// Report where the loop closes: the trigger in start's job.
		last := loop[len(loop)-2]
		d := l.jobs[start]
		d.s.errf(at[[2]string{last, start}], "", "completion triggers form a cycle: %s", strings.Join(loop, " → "))
	}
}

// sccs returns the strongly connected components of the graph (Tarjan),
// each sorted, in order of their first name.
func sccs(names []string, next map[string][]string) [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	i := 0
	var visit func(v string)
	visit = func(v string) {
		index[v], low[v] = i, i
		i++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range next[v] {
			if _, ok := index[w]; !ok {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			sort.Strings(comp)
			out = append(out, comp)
		}
	}
	for _, n := range names {
		if _, ok := index[n]; !ok {
			visit(n)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	return out
}

// shortestLoop finds the shortest path start → … → start inside a
// component, by breadth-first search.
func shortestLoop(start string, next map[string][]string, in map[string]bool) []string {
	prev := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range next[v] {
			if !in[w] {
				continue
			}
			if w == start {
				loop := []string{start}
				for u := v; u != start; u = prev[u] {
					loop = append(loop, u)
				}
				loop = append(loop, start)
				// Built backwards; flip to follow the arrows.
				for a, b := 0, len(loop)-1; a < b; a, b = a+1, b-1 {
					loop[a], loop[b] = loop[b], loop[a]
				}
				return loop
			}
			if !seen[w] {
				seen[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []string{start, start}
}

// envValue reads one variable of a job's env: a scalar is a literal;
// {file: /abs/path} or {env: NAME} is a secret read when a run starts.
func envValue(s scope, n *yaml.Node) (talon.EnvValue, bool) {
	if deref(n).Kind != yaml.MappingNode {
		v, ok := s.str(n)
		return talon.EnvValue{Value: v}, ok
	}
	fs := s.fields(n, []string{"file", "env"}, "a secret's source (file or env)")
	if len(fs) == 0 && len(deref(n).Content) > 0 {
		return talon.EnvValue{}, false // its unknown keys are reported
	}
	var v talon.EnvValue
	if f, ok := fs.get("file"); ok {
		fsc := s.sub("file")
		if p, ok := fsc.str(f.val); ok {
			if !filepath.IsAbs(p) {
				fsc.errf(f.val, "e.g. {file: /run/secrets/db-password}", "secret file %s: want an absolute path", quote(p))
				return v, false
			}
			v.File = filepath.Clean(p)
		}
	}
	if f, ok := fs.get("env"); ok {
		esc := s.sub("env")
		if name, ok := esc.str(f.val); ok {
			if !envNameRE.MatchString(name) {
				esc.errf(f.val, "use letters, digits and '_', not starting with a digit", "invalid variable name %s", quote(name))
				return v, false
			}
			v.Env = name
		}
	}
	switch {
	case v.File != "" && v.Env != "":
		s.errf(n, "keep one of them", "a secret comes from a file or from the server's environment, not both")
		return v, false
	case !v.Secret():
		s.errf(n, "e.g. {file: /run/secrets/db-password} or {env: DB_PASSWORD}", "want a string, or a secret's source")
		return v, false
	}
	return v, true
}
