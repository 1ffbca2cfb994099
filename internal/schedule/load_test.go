package schedule

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
	"github.com/talonhq/talon/internal/trigger"
)

// fakeTrigger stands in for trigger.Parse where a test needs exact
// trigger error text that does not depend on the trigger package's
// wording: it rejects the word "minuts" and accepts anything else.
func fakeParse(expr string, _ trigger.Options) (trigger.Trigger, error) {
	if i := strings.Index(expr, "minuts"); i >= 0 {
		return nil, &trigger.Error{Offset: i, Msg: `unknown unit "minuts"`, Hint: "want minute, hour, day"}
	}
	return fakeTrigger{}, nil
}

type fakeTrigger struct{}

func (fakeTrigger) Next(after time.Time) time.Time { return after.Add(time.Hour) }

// testOpt is what the CLI offers offline: the built-in executors.
var testOpt = Options{Executors: []string{"inprocess", "local"}}

// useParser swaps the trigger parser for one test. Tests in this package
// do not run in parallel because of it.
func useParser(t *testing.T, p func(string, trigger.Options) (trigger.Trigger, error)) {
	t.Helper()
	old := parseTrigger
	parseTrigger = p
	t.Cleanup(func() { parseTrigger = old })
}

func TestMain(m *testing.M) {
	// A kind with known wording, so the tests of constraint errors do not
	// depend on the built-ins' messages.
	constraint.Register("test_even", func(v any) (constraint.Constraint, error) {
		n, ok := v.(int)
		if !ok || n%2 != 0 {
			return nil, fmt.Errorf("want an even number, got %v", v)
		}
		return nil, nil
	})
	os.Exit(m.Run())
}

// errLines returns the errors of err one per line, or fails the test if
// err is not an ErrorList.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList: %v", err, err)
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Error()
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			// yaml.v3 reports the line before the unclosed bracket; the
			// error must point at the bracket's own line.
			name: "yaml syntax: unclosed bracket",
			yaml: "jobs:\n  a:\n    command: [x\n",
			want: []string{"s.yaml:3:5: invalid YAML: did not find expected ',' or ']'"},
		},
		{
			name: "yaml syntax: unclosed bracket before more keys",
			yaml: "jobs:\n  a:\n    command: [x,\n      y]\n    poll: 1m\n    env: {A: b\n  b:\n    command: [x]\n",
			want: []string{"s.yaml:6:5: invalid YAML: did not find expected ',' or '}'"},
		},
		{
			// yaml.v3 says "line 1" here: the line of the mapping the
			// badly indented key breaks.
			name: "yaml syntax: bad indentation",
			yaml: "jobs:\n  a:\n    command: [x]\n   poll: 1m\n",
			want: []string{"s.yaml:4:4: invalid YAML: did not find expected key"},
		},
		{
			name: "yaml syntax: in a later document",
			yaml: "jobs: {}\n---\njobs:\n  a:\n    command: [x]\n  - b\n",
			want: []string{"s.yaml:6:3: invalid YAML: did not find expected key"},
		},
		{
			// yaml.v3 gives no line at all for this one.
			name: "yaml syntax: unknown anchor",
			yaml: "jobs:\n  a:\n    command: [x]\n    env: *nope\n",
			want: []string{"s.yaml:4:5: invalid YAML: unknown anchor 'nope' referenced"},
		},
		{
			name: "yaml syntax: unclosed quote",
			yaml: "jobs:\n  a:\n    command: [x]\n    poll: \"1m\n\n",
			want: []string{"s.yaml:4:5: invalid YAML: found unexpected end of stream"},
		},
		{
			name: "yaml tab indentation",
			yaml: "jobs:\n\ta: 1\n",
			want: []string{"s.yaml:2:1: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "top level not a mapping",
			yaml: "- a\n",
			want: []string{"s.yaml:1:1: want a mapping at the top level, not a list (want jobs:, calendars: or resources:)"},
		},
		{
			name: "unknown top-level key",
			yaml: "job:\n  a: {command: [x]}\n",
			want: []string{`s.yaml:1:1: unknown key "job" (did you mean "jobs"?)`},
		},
		{
			name: "config keys are ignored",
			yaml: "state: sqlite:x.db\nlisten: 127.0.0.1:1\nauth: {tokens: []}\nnode: n1\nlogs: l\nexecutors: {}\nschedule: .\ntls: {}\nlease: 30s\njobs:\n  a: {command: [x]}\n",
		},
		{
			name: "unknown job key",
			yaml: "jobs:\n  a:\n    command: [x]\n    schedul: \"@daily\"\n",
			want: []string{`s.yaml:4:5: job "a": unknown key "schedul" (did you mean "schedule"?)`},
		},
		{
			name: "repeated key",
			yaml: "jobs:\n  a:\n    command: [x]\n    command: [y]\n",
			want: []string{`s.yaml:4:5: job "a": key "command" repeated (first at line 3)`},
		},
		{
			name: "job defined twice in one file",
			yaml: "jobs:\n  a: {command: [x]}\n  a: {command: [y]}\n",
			want: []string{`s.yaml:3:3: jobs: key "a" repeated (first at line 2)`},
		},
		{
			name: "poll not a duration",
			yaml: "jobs:\n  a:\n    command: [x]\n    poll: fast\n",
			want: []string{`s.yaml:4:11: job "a": poll: want a duration like 1m or 90s, not "fast"`},
		},
		{
			name: "poll zero",
			yaml: "jobs:\n  a:\n    command: [x]\n    poll: 0s\n",
			want: []string{`s.yaml:4:11: job "a": poll: want a duration from 1s to 24h, not "0s"`},
		},
		{
			name: "negative timeout and mapping window",
			yaml: "jobs:\n  a:\n    command: [x]\n    timeout: -1m\n    catchup_window: {h: 1}\n",
			want: []string{
				`s.yaml:4:14: job "a": timeout: want 0 (none) or a duration from 1s to 30d, not "-1m"`,
				`s.yaml:5:21: job "a": catchup_window: want 0 (no bound) or a duration from 1s to 366d, not a mapping`,
			},
		},
		{
			name: "bad zone",
			yaml: "jobs:\n  a:\n    command: [x]\n    timezone: Europe/Lndon\n",
			want: []string{`s.yaml:4:15: job "a": timezone: unknown zone "Europe/Lndon" (want an IANA name like "Europe/London" or "UTC")`},
		},
		{
			name: "unknown period type",
			yaml: "jobs:\n  a:\n    command: [x]\n    period: dayly\n",
			want: []string{`s.yaml:4:13: job "a": period: unknown period type "dayly" (did you mean "daily"?)`},
		},
		{
			name: "unknown period type far from any",
			yaml: "jobs:\n  a:\n    command: [x]\n    period: {type: fortnightly}\n",
			want: []string{`s.yaml:4:20: job "a": period: type: unknown period type "fortnightly" (want one of hourly, daily, weekly, monthly, quarterly, yearly, oneshot)`},
		},
		{
			name: "period without type",
			yaml: "calendars: {uk: {}}\njobs:\n  a:\n    command: [x]\n    period: {calendar: uk}\n",
			want: []string{`s.yaml:5:13: job "a": period: missing type (want one of hourly, daily, weekly, monthly, quarterly, yearly, oneshot)`},
		},
		{
			name: "unknown calendar",
			yaml: "calendars:\n  uk: {holidays: [2026-12-25]}\njobs:\n  a:\n    command: [x]\n    period: {type: daily, calendar: ukk}\n",
			want: []string{`s.yaml:6:37: job "a": period: calendar: unknown calendar "ukk" (did you mean "uk"?)`},
		},
		{
			name: "calendar names follow the trigger grammar's CALNAME",
			yaml: "calendars:\n  1uk: {}\n  us.nyse: {}\n  US-NYSE: {}\njobs:\n  a:\n    command: [x]\n    period: {type: daily, calendar: us-nyse}\n",
			want: []string{
				`s.yaml:2:3: invalid calendar name "1uk" (use letters, digits, '_' and '-', starting with a letter, as in US-NYSE)`,
				`s.yaml:3:3: invalid calendar name "us.nyse" (use letters, digits, '_' and '-', starting with a letter, as in US-NYSE)`,
				`s.yaml:8:37: job "a": period: calendar: unknown calendar "us-nyse" (did you mean "US-NYSE"?)`,
			},
		},
		{
			name: "unknown calendar without near name",
			yaml: "jobs:\n  a:\n    command: [x]\n    period: {type: daily, calendar: nyse}\n",
			want: []string{`s.yaml:4:37: job "a": period: calendar: unknown calendar "nyse" (declare it under calendars: at the top level)`},
		},
		{
			name: "trigger parse error, double quoted",
			yaml: "jobs:\n  a:\n    command: [x]\n    triggers:\n      - schedule: \"every 15 minuts\"\n",
			want: []string{`s.yaml:5:29: job "a": trigger "every 15 minuts": unknown unit "minuts" (want minute, hour, day)`},
		},
		{
			name: "trigger parse error, plain",
			yaml: "jobs:\n  a:\n    command: [x]\n    schedule: every 15 minuts\n",
			want: []string{`s.yaml:4:24: job "a": trigger "every 15 minuts": unknown unit "minuts" (want minute, hour, day)`},
		},
		{
			name: "trigger parse error, folded over lines",
			yaml: "jobs:\n  a:\n    command: [x]\n    schedule: >-\n      every 15\n      minuts\n",
			want: []string{`s.yaml:4:15: job "a": trigger "every 15 minuts": unknown unit "minuts" (want minute, hour, day)`},
		},
		{
			name: "trigger with both schedule and after",
			yaml: "jobs:\n  b: {command: [x]}\n  a:\n    command: [x]\n    triggers:\n      - {schedule: \"@daily\", after: b}\n",
			want: []string{`s.yaml:6:9: job "a": triggers: want exactly one of schedule or after in a trigger`},
		},
		{
			name: "trigger bad period and unknown key",
			yaml: "jobs:\n  a:\n    command: [x]\n    triggers:\n      - schedule: \"@daily\"\n        period: prev\n        perod: same\n",
			want: []string{
				`s.yaml:6:17: job "a": triggers: period: want same or previous, not "prev" (did you mean "previous"?)`,
				`s.yaml:7:9: job "a": triggers: unknown key "perod" (did you mean "period"?)`,
			},
		},
		{
			name: "triggers not a list",
			yaml: "jobs:\n  a:\n    command: [x]\n    triggers: {schedule: \"@daily\"}\n",
			want: []string{`s.yaml:4:15: job "a": triggers: want a list like [{schedule: "30 6 * * 1-5"}, {after: extract}], not a mapping`},
		},
		{
			name: "unknown job in after trigger",
			yaml: "jobs:\n  extract: {command: [x]}\n  load:\n    command: [x]\n    triggers:\n      - after: extrct\n",
			want: []string{`s.yaml:6:16: job "load": after: unknown job "extrct" (did you mean "extract"?)`},
		},
		{
			name: "unknown jobs in after constraint",
			yaml: "jobs:\n  extract: {command: [x]}\n  load:\n    command: [x]\n    constraints:\n      after: [extract, extrakt, {job: zzz, period: previous}]\n",
			want: []string{
				`s.yaml:6:24: job "load": constraint after: unknown job "extrakt" (did you mean "extract"?)`,
				`s.yaml:6:39: job "load": constraint after: unknown job "zzz"`,
			},
		},
		{
			name: "cycle of two",
			yaml: "jobs:\n  a:\n    command: [x]\n    triggers: [{after: b}]\n  b:\n    command: [x]\n    triggers: [{after: a}]\n",
			want: []string{`s.yaml:4:24: job "a": completion triggers form a cycle: a → b → a`},
		},
		{
			name: "cycle of three and a self loop",
			yaml: "jobs:\n  a:\n    command: [x]\n    triggers: [{after: c}]\n  b:\n    command: [x]\n    triggers: [{after: a}]\n  c:\n    command: [x]\n    triggers: [{after: b}]\n  d:\n    command: [x]\n    triggers: [{after: d}, {after: a}]\n",
			want: []string{
				`s.yaml:4:24: job "a": completion triggers form a cycle: a → b → c → a`,
				`s.yaml:13:24: job "d": completion triggers form a cycle: d → d`,
			},
		},
		{
			name: "constraint compile error",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints:\n      test_even: 3\n",
			want: []string{`s.yaml:5:7: job "a": constraint test_even: want an even number, got 3`},
		},
		{
			// The built-in kinds name themselves in their errors: the
			// kind is said once, not "max_running: max_running:".
			name: "built-in constraint errors say the kind once",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints:\n      max_running: 1e23\n      max_blocked: 0\n      after: [a, 3]\n",
			want: []string{
				`s.yaml:5:7: job "a": constraint max_running: want an integer from 1 to 10000, got 1e+23`,
				`s.yaml:6:7: job "a": constraint max_blocked: want an integer from 1 to 10000, got 0`,
				`s.yaml:7:7: job "a": constraint after[1]: want a job name or {job: NAME, …}, got 3`,
			},
		},
		{
			name: "unknown constraint",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints:\n      test_evn: 2\n",
			want: []string{`s.yaml:5:7: job "a": unknown constraint "test_evn" (did you mean "test_even"?)`},
		},
		{
			name: "constraints not a mapping",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints: [max_running]\n",
			want: []string{`s.yaml:4:18: job "a": constraints: want a mapping of constraint kinds to settings, not a list`},
		},
		{
			name: "bad retries",
			yaml: "jobs:\n  a:\n    command: [x]\n    retries: {max: -1, delay: soon}\n  b:\n    command: [x]\n    retries: {maxx: 2}\n  c:\n    command: [x]\n    retries: lots\n",
			want: []string{
				`s.yaml:4:20: job "a": retries: max: want a whole number from 0 to 100, not -1`,
				`s.yaml:4:31: job "a": retries: delay: want a duration like 1m or 90s, not "soon"`,
				`s.yaml:7:14: job "b": retries: missing max`,
				`s.yaml:7:15: job "b": retries: unknown key "maxx" (did you mean "max"?)`,
				`s.yaml:10:14: job "c": retries: want a number of retries or {max: N, delay: 5m}, not "lots"`,
			},
		},
		{
			name: "bad catchup",
			yaml: "jobs:\n  a:\n    command: [x]\n    catchup: sometimes\n  b:\n    command: [x]\n    catchup: lates\n",
			want: []string{
				`s.yaml:4:14: job "a": catchup: want all, latest or none, not "sometimes"`,
				`s.yaml:7:14: job "b": catchup: want all, latest or none, not "lates" (did you mean "latest"?)`,
			},
		},
		{
			name: "empty, shell-line and missing commands",
			yaml: "jobs:\n  a:\n    command: []\n  b:\n    command: \"echo hi\"\n  c:\n    period: daily\n  d:\n  e:\n    command: [\"\"]\n  f:\n    executor: inprocess\n",
			want: []string{
				`s.yaml:3:14: job "a": command: want a non-empty list of strings (argv), like ["/opt/bin/load", "--all"]`,
				`s.yaml:5:14: job "b": command: want a non-empty list of strings (argv), like ["/opt/bin/load", "--all"], not a scalar`,
				`s.yaml:6:3: job "c": missing command`,
				`s.yaml:8:3: job "d": missing command`,
				`s.yaml:10:14: job "e": command: want a non-empty list of strings (argv), like ["/opt/bin/load", "--all"]`,
			},
		},
		{
			name: "bad job names",
			yaml: "jobs:\n  Load: {command: [x]}\n  _x: {command: [x]}\n  \"a b\": {command: [x]}\n",
			want: []string{
				`s.yaml:2:3: invalid job name "Load" (did you mean "load"?)`,
				`s.yaml:3:3: invalid job name "_x" (use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit)`,
				`s.yaml:4:3: invalid job name "a b" (use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit)`,
			},
		},
		{
			name: "unknown resources",
			yaml: "resources:\n  db/prod/connections: {capacity: 4}\njobs:\n  a:\n    command: [x]\n    resources: {db/prod/conections: 1, gpu: 1, db/prod/connections: 5, db/*/connections: 1, db: 1}\n",
			want: []string{
				`s.yaml:6:17: job "a": resources: unknown resource "db/prod/conections" (did you mean "db/prod/connections"?)`,
				`s.yaml:6:40: job "a": resources: unknown resource "gpu" (declare it under resources: at the top level)`,
				`s.yaml:6:69: job "a": resources: asks for 5 of "db/prod/connections", which has capacity 4`,
			},
		},
		{
			name: "requests that can never be met",
			yaml: "resources:\n  hosts/linux/h01: {attributes: {cores: 8}}\n  api/quota: {capacity: 10, per: daily}\n  db/prod/connections: 2\n  x: {capacity: 1, per: fortnightly}\n" +
				"jobs:\n  a:\n    command: [x]\n    resources:\n      - {path: hosts/linux/*, where: {cores: \">=16\"}}\n      - {path: api/quota, count: 11}\n      - hosts/linux/*: {count: 1, where: {cores: \">= many\"}}\n      - {path: hosts, count: 1, colour: red}\n" +
				"  b:\n    command: [x]\n    resources:\n      db/{{environment}}/connections: 1\n" +
				"  c:\n    command: [x]\n    environment: dev\n    resources:\n      db/{{environment}}/connections: 1\n" +
				"  d:\n    command: [x]\n    environment: prod\n    resources:\n      db/{{environment}}/connections: 1\n",
			want: []string{
				`s.yaml:5:25: resource "x": per: unknown period type "fortnightly" (want hourly, daily, weekly, monthly, quarterly or yearly)`,
				`s.yaml:10:9: job "a": resources: no resource matching "hosts/linux/*" has cores>=16`,
				`s.yaml:11:34: job "a": resources: asks for 11 of "api/quota", which has capacity 10`,
				`s.yaml:12:50: job "a": resources: hosts/linux/*: where: cores: >= wants a number, not "many"`,
				`s.yaml:13:33: job "a": resources: [3]: unknown key "colour"`,
				`s.yaml:17:7: job "b": resources: "db/{{environment}}/connections" uses {{environment}} but the job has no environment (set environment: on the job)`,
				`s.yaml:22:7: job "c": resources: unknown resource "db/dev/connections" (declare it under resources: at the top level)`,
			},
		},
		{
			name: "bad resource declarations and requests",
			yaml: "resources:\n  db//x: 1\n  a: {attributes: {k: v}}\n  b: {capacity: -1}\n  c: lots\njobs:\n  a:\n    command: [x]\n    resources: {a: 0, b: many}\n",
			want: []string{
				`s.yaml:2:3: invalid resource path "db//x" (use segments of letters, digits, '_', '.' and '-' joined by '/', like db/prod/connections)`,
				`s.yaml:4:17: resource "b": capacity: want a whole number from 0 to 1000000000, not -1`,
				`s.yaml:5:6: resource "c": want a capacity (a whole number ≥ 0) or {capacity: N, attributes: {…}}, not "lots"`,
				`s.yaml:9:20: job "a": resources: a: want a whole number from 1 to 1000000000, not 0`,
				`s.yaml:9:26: job "a": resources: b: want a whole number from 1 to 1000000000, not "many"`,
			},
		},
		{
			name: "bad env",
			yaml: "jobs:\n  a:\n    command: [x]\n    env: {1X: a, TALON_JOB: b, OK: [1]}\n",
			want: []string{
				`s.yaml:4:11: job "a": env: invalid variable name "1X" (use letters, digits and '_', not starting with a digit)`,
				`s.yaml:4:18: job "a": env: variable "TALON_JOB" is reserved (Talon sets TALON_ variables itself)`,
				`s.yaml:4:36: job "a": env: OK: want a string, not a list`,
			},
		},
		{
			name: "bad secret env",
			yaml: "jobs:\n  a:\n    command: [x]\n    env:\n      A: {file: secrets/pw}\n      B: {env: 1X}\n      C: {file: /pw, env: PW}\n      D: {path: /pw}\n      E: {}\n",
			want: []string{
				`s.yaml:5:17: job "a": env: A: file: secret file "secrets/pw": want an absolute path (e.g. {file: /run/secrets/db-password})`,
				`s.yaml:6:16: job "a": env: B: env: invalid variable name "1X" (use letters, digits and '_', not starting with a digit)`,
				`s.yaml:7:10: job "a": env: C: a secret comes from a file or from the server's environment, not both (keep one of them)`,
				`s.yaml:8:11: job "a": env: D: unknown key "path"`,
				`s.yaml:9:10: job "a": env: E: want a string, or a secret's source (e.g. {file: /run/secrets/db-password} or {env: DB_PASSWORD})`,
			},
		},
		{
			name: "bad params",
			yaml: "jobs:\n  a:\n    command: [x]\n    params: [1, 2]\n  b:\n    command: [x]\n    params: {x: .inf}\n  c:\n    command: [x]\n    params: &p {x: *p}\n",
			want: []string{
				`s.yaml:4:13: job "a": params: want a mapping of names to values, not a list`,
				`s.yaml:7:13: job "b": params: cannot be passed as JSON: json: unsupported value: +Inf`,
				`s.yaml:10:20: job "c": params: alias refers to a value that contains it`,
			},
		},
		{
			name: "bad calendar",
			yaml: "calendars:\n  uk:\n    weekend: [sat, sundae]\n    holidays: [2026-13-01]\n    through: soon\n    holiday: []\n",
			want: []string{
				`s.yaml:3:20: calendar "uk": weekend: unknown day "sundae" (want mon, tue, wed, thu, fri, sat or sun)`,
				`s.yaml:4:16: calendar "uk": holidays: want a date like 2026-12-25, not "2026-13-01"`,
				`s.yaml:5:14: calendar "uk": through: want a date like 2026-12-25, not "soon"`,
				`s.yaml:6:5: calendar "uk": unknown key "holiday" (did you mean "holidays"?)`,
			},
		},
		{
			name: "all week is weekend",
			yaml: "calendars:\n  never: {weekend: [mon, tue, wed, thu, fri, sat, sun]}\n",
			want: []string{`s.yaml:2:20: calendar "never": weekend: every day is a weekend day`},
		},
		{
			name: "bad holiday ranges",
			yaml: "calendars:\n  uk:\n    holidays: [2026-12-31..2026-12-01, 2026-01-01..3026-01-01, 2026-01-01..x]\n",
			want: []string{
				`s.yaml:3:16: calendar "uk": holidays: range "2026-12-31..2026-12-01": want the first date on or before the last, at most 3660 days apart`,
				`s.yaml:3:40: calendar "uk": holidays: range "2026-01-01..3026-01-01": want the first date on or before the last, at most 3660 days apart`,
				`s.yaml:3:64: calendar "uk": holidays: want a date like 2026-12-25, not "x"`,
			},
		},
		{
			name: "bad scalars",
			yaml: "jobs:\n  a:\n    command: [x]\n    priority: high\n    description: {a: b}\n    environment: Prod\n",
			want: []string{
				`s.yaml:4:15: job "a": priority: want a whole number from -1000 to 1000, not "high"`,
				`s.yaml:5:18: job "a": description: want a string, not a mapping`,
				`s.yaml:6:18: job "a": invalid environment name "Prod" (did you mean "prod"?)`,
			},
		},
		{
			// A 1ns retry delay once made 699 runs in 5 s.
			name: "numbers and durations out of bounds",
			yaml: "resources:\n  r: {capacity: 2000000000}\n  q: 3000000000\njobs:\n  a:\n    command: [x]\n" +
				"    retries: {max: 1000000000, delay: 1ns}\n    poll: 1ns\n    timeout: 100000000h\n" +
				"    catchup_window: 400d\n    priority: 99999999999\n    resources: {q: 1000000001}\n" +
				"  b:\n    command: [x]\n    retries: 101\n    poll: 25h\n    timeout: 31d\n    catchup_window: 1ms\n  c:\n    command: [x]\n    retries: {max: 1, delay: 8d}\n",
			want: []string{
				`s.yaml:2:17: resource "r": capacity: want a whole number from 0 to 1000000000, not 2000000000`,
				`s.yaml:3:6: resource "q": capacity: want a whole number from 0 to 1000000000, not 3000000000`,
				`s.yaml:7:20: job "a": retries: max: want a whole number from 0 to 100, not 1000000000`,
				`s.yaml:7:39: job "a": retries: delay: want 0 (at once) or a duration from 1s to 7d, not "1ns"`,
				`s.yaml:8:11: job "a": poll: want a duration from 1s to 24h, not "1ns"`,
				`s.yaml:9:14: job "a": timeout: want 0 (none) or a duration from 1s to 30d, not "100000000h"`,
				`s.yaml:10:21: job "a": catchup_window: want 0 (no bound) or a duration from 1s to 366d, not "400d"`,
				`s.yaml:11:15: job "a": priority: want a whole number from -1000 to 1000, not 99999999999`,
				`s.yaml:12:20: job "a": resources: q: want a whole number from 1 to 1000000000, not 1000000001`,
				`s.yaml:15:14: job "b": retries: want a whole number from 0 to 100, not 101`,
				`s.yaml:16:11: job "b": poll: want a duration from 1s to 24h, not "25h"`,
				`s.yaml:17:14: job "b": timeout: want 0 (none) or a duration from 1s to 30d, not "31d"`,
				`s.yaml:18:21: job "b": catchup_window: want 0 (no bound) or a duration from 1s to 366d, not "1ms"`,
				`s.yaml:21:30: job "c": retries: delay: want 0 (at once) or a duration from 1s to 7d, not "8d"`,
			},
		},
		{
			name: "a bad job name does not hide the job's errors",
			yaml: "jobs:\n  Load:\n    command: [x]\n    poll: fast\n    executor: locl\n    triggers: [{after: extrct}]\n  extract: {command: [x]}\n",
			want: []string{
				`s.yaml:2:3: invalid job name "Load" (did you mean "load"?)`,
				`s.yaml:4:11: job "Load": poll: want a duration like 1m or 90s, not "fast"`,
				`s.yaml:5:15: job "Load": executor: unknown executor "locl" (did you mean "local"?)`,
				`s.yaml:6:24: job "Load": after: unknown job "extrct" (did you mean "extract"?)`,
			},
		},
		{
			name: "a bad calendar name does not hide the calendar's errors",
			yaml: "calendars:\n  \"u k\":\n    holidays: [2026-13-01]\n",
			want: []string{
				`s.yaml:2:3: invalid calendar name "u k" (use letters, digits, '_' and '-', starting with a letter, as in US-NYSE)`,
				`s.yaml:3:16: calendar "u k": holidays: want a date like 2026-12-25, not "2026-13-01"`,
			},
		},
		{
			// An error on a 100 KB expression repeats 80 characters of it.
			name: "long values are cut in messages",
			yaml: "jobs:\n  a:\n    command: [x]\n    schedule: \"" + strings.Repeat("every 15 minutes, ", 5000) + "every 15 minuts\"\n    timezone: " + strings.Repeat("Z", 100000) + "\n",
			want: []string{
				`s.yaml:4:90025: job "a": trigger "` + strings.Repeat("every 15 minutes, ", 5)[:79] + `…": unknown unit "minuts" (want minute, hour, day)`,
				`s.yaml:5:15: job "a": timezone: unknown zone "` + strings.Repeat("Z", 79) + `…" (want an IANA name like "Europe/London" or "UTC")`,
			},
		},
		{
			// inprocess functions get params and TALON_ variables only.
			name: "env and dir with executor inprocess",
			yaml: "jobs:\n  a:\n    executor: inprocess\n    command: [noop]\n    env: {A: b}\n    dir: /tmp\n",
			want: []string{
				`s.yaml:5:5: job "a": env has no effect with executor inprocess (pass values to a function in params)`,
				`s.yaml:6:5: job "a": dir has no effect with executor inprocess (pass values to a function in params)`,
			},
		},
		{
			name: "unknown executors",
			yaml: "jobs:\n  a:\n    command: [x]\n    executor: locl\n  b:\n    command: [x]\n    executor: kubernetes\n  c:\n    command: [x]\n    executor: \"\"\n",
			want: []string{
				`s.yaml:4:15: job "a": executor: unknown executor "locl" (did you mean "local"?)`,
				`s.yaml:7:15: job "b": executor: unknown executor "kubernetes" (want one of inprocess, local)`,
				`s.yaml:10:15: job "c": executor: missing executor name (want one of inprocess, local)`,
			},
		},
		{
			name: "declared artifacts",
			yaml: "jobs:\n  a:\n    command: [x]\n    artifacts:\n      report: \"file:///data/{{day}}/r.csv\"\n      js: \"javascript:alert(1)\"\n      Bad: \"s3://b/x\"\n      env: \"s3://{{environment}}/x\"\n      list: [s3://b/x]\n",
			want: []string{
				`s.yaml:5:15: job "a": artifacts: report: "file:///data/{{day}}/r.csv": unknown placeholder {{day}} (want {{period}}, {{period_type}}, {{environment}}) (like "file:///data/{{period}}/report.csv")`,
				`s.yaml:6:11: job "a": artifacts: js: artifact URL "javascript:alert(1)": scheme "javascript" is not allowed (allowed: file, s3, s3a, gs, az, abfs, abfss, wasbs, hdfs, http, https, sftp, postgres, postgresql, mysql, bigquery, snowflake, table) (like "file:///data/{{period}}/report.csv")`,
				`s.yaml:7:7: job "a": artifacts: invalid artifact name "Bad" (use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit)`,
				`s.yaml:8:12: job "a": artifacts: env: {{environment}}: the job has no environment (set the job's environment:, or leave {{environment}} out)`,
				`s.yaml:9:13: job "a": artifacts: list: want a string, not a list`,
			},
		},
		{
			name: "artifact constraint",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints:\n      artifact: {url: \"s3://b/{{period}}/*.csv\", job: nope}\n  b:\n    command: [x]\n    constraints:\n      artifact: \"data:{{period}}\"\n",
			want: []string{
				`s.yaml:5:55: job "a": constraint artifact: unknown job "nope"`,
				`s.yaml:9:7: job "b": constraint artifact: artifact URL "data:{{period}}": scheme "data" is not allowed (allowed: file, s3, s3a, gs, az, abfs, abfss, wasbs, hdfs, http, https, sftp, postgres, postgresql, mysql, bigquery, snowflake, table)`,
			},
		},
		{
			name: "jobs not a mapping",
			yaml: "jobs: [a, b]\n",
			want: []string{`s.yaml:1:7: jobs: want a mapping of job names to jobs, not a list`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useParser(t, fakeParse)
			s, err := LoadBytes(testOpt, "s.yaml", []byte(tt.yaml))
			got := errLines(t, err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err == nil && s == nil {
				t.Error("nil schedule without error")
			}
		})
	}
}

// fullExample is the schedule of the issue that introduced the format.
const fullExample = `# the quick start keeps config and schedule in one file
state: sqlite:talon.db
calendars:
  uk:
    weekend: [sat, sun]
    holidays: [2026-12-25, 2026-12-28]
    extra_business_days: [2026-12-27]
    through: 2027-12-31
resources:
  db/prod/connections: {capacity: 4, attributes: {tier: gold}}
  hosts/linux/h01: 8
jobs:
  extract:
    description: Fetch prices
    period: {type: daily, calendar: uk}
    timezone: Europe/London
    environment: prod
    triggers:
      - schedule: "30 6 * * 1-5"
        period: previous
      - schedule: "30 6 * * 1-5"
    command: ["/opt/bin/extract", "--out", "/data"]
    env: {MODE: full, N: 1, PW: {file: /run/secrets/pw}, TOKEN: {env: API_TOKEN}}
    dir: /data
    params: {source: lse, when: 2026-01-02, n: 3, x: 1.5, ok: true, none: null, list: [a, {b: c}]}
    poll: 30s
    timeout: 2h
    retries: {max: 2, delay: 5m}
    catchup: all
    catchup_window: 2d
    priority: 5
  load:
    period: daily
    triggers:
      - after: extract
    constraints:
      after: [extract]
      not_before: "07:00"
      start_by: {at: "09:30", action: fail}
      once_per_period: true
      max_running: 1
      max_blocked: 1
      command: ["test", "-f", "/data/ready"]
    resources: {db/prod/connections: 1, hosts/linux/*: 1}
    command: ["/opt/bin/load"]
    executor: local
`

func TestLoadFullExample(t *testing.T) {
	s, err := LoadBytes(testOpt, "talon.yaml", []byte(fullExample))
	if err != nil {
		t.Fatalf("LoadBytes: %v\n%s", err, strings.Join(errLines(t, err), "\n"))
	}
	if got, want := s.Summary(), "ok: 2 jobs (2 time triggers, 1 completion trigger), 1 calendar, 2 resources in 1 file"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if len(s.Jobs) != 2 || s.Jobs[0].Name != "extract" || s.Jobs[1].Name != "load" || s.ByName["load"] != s.Jobs[1] {
		t.Fatalf("jobs not sorted by name or not indexed: %+v", s.Jobs)
	}
	london, _ := time.LoadLocation("Europe/London")
	ex := s.ByName["extract"]
	wantEx := talon.Job{
		Name:        "extract",
		Description: "Fetch prices",
		Period:      talon.PeriodSpec{Type: talon.Daily, Calendar: "uk"},
		Timezone:    "Europe/London",
		Location:    london,
		Environment: "prod",
		Triggers: []talon.TriggerSpec{
			{ID: "schedule:30 6 * * 1-5", Schedule: "30 6 * * 1-5", Period: talon.PeriodPrevious},
			{ID: "schedule:30 6 * * 1-5#2", Schedule: "30 6 * * 1-5", Period: talon.PeriodSame},
		},
		Executor: "local",
		Command:  []string{"/opt/bin/extract", "--out", "/data"},
		Env: map[string]talon.EnvValue{"MODE": {Value: "full"}, "N": {Value: "1"},
			"PW": {File: "/run/secrets/pw"}, "TOKEN": {Env: "API_TOKEN"}},
		Dir: "/data",
		Params: map[string]any{
			"source": "lse", "when": "2026-01-02", "n": 3, "x": 1.5, "ok": true, "none": nil,
			"list": []any{"a", map[string]any{"b": "c"}},
		},
		Poll:          30 * time.Second,
		Timeout:       2 * time.Hour,
		Retries:       talon.RetryPolicy{Max: 2, Delay: 5 * time.Minute},
		Catchup:       talon.CatchupAll,
		CatchupWindow: 48 * time.Hour,
		Priority:      5,
	}
	if ex.Location.String() != "Europe/London" {
		t.Errorf("Location = %v", ex.Location)
	}
	gotEx := ex.Job
	gotEx.Location = london
	if !reflect.DeepEqual(gotEx, wantEx) {
		t.Errorf("extract:\n got %#v\nwant %#v", gotEx, wantEx)
	}
	if len(ex.Times) != 2 || ex.Times[0] == nil || ex.Times[1] == nil {
		t.Errorf("Times = %v, want two compiled triggers", ex.Times)
	}
	if ex.Calendar == nil || ex.Calendar != s.Calendars["uk"] {
		t.Errorf("Calendar = %v, want the uk calendar", ex.Calendar)
	}

	ld := s.ByName["load"]
	if ld.Timezone != "UTC" || ld.Location != time.UTC || ld.Poll != time.Minute || ld.Catchup != talon.CatchupLatest || ld.Executor != "local" {
		t.Errorf("load defaults: zone %q %v, poll %v, catchup %q, executor %q", ld.Timezone, ld.Location, ld.Poll, ld.Catchup, ld.Executor)
	}
	if want := []talon.TriggerSpec{{ID: "after:extract", After: "extract", Period: talon.PeriodSame}}; !reflect.DeepEqual(ld.Triggers, want) {
		t.Errorf("load triggers = %+v, want %+v", ld.Triggers, want)
	}
	if len(ld.Times) != 1 || ld.Times[0] != nil {
		t.Errorf("load Times = %v, want [nil] for a completion trigger", ld.Times)
	}
	var kinds []string
	for _, c := range ld.Constraints {
		kinds = append(kinds, c.Kind)
	}
	if want := []string{"after", "not_before", "start_by", "once_per_period", "max_running", "max_blocked", "command"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("constraint kinds = %v, want %v (in schedule order)", kinds, want)
	}
	if len(ld.Checks) != len(ld.Constraints) {
		t.Errorf("%d checks for %d constraints", len(ld.Checks), len(ld.Constraints))
	}
	for i, c := range ld.Checks {
		if c == nil || c.Name() != kinds[i] {
			t.Errorf("check %d = %v, want kind %s", i, c, kinds[i])
		}
	}
	if want := (talon.ConstraintSpec{Kind: "start_by", Value: map[string]any{"at": "09:30", "action": "fail"}}); !reflect.DeepEqual(ld.Constraints[2], want) {
		t.Errorf("start_by spec = %#v, want %#v", ld.Constraints[2], want)
	}
	if want := map[string]int{"db/prod/connections": 1, "hosts/linux/*": 1}; !reflect.DeepEqual(ld.Resources, want) {
		t.Errorf("resources = %v, want %v", ld.Resources, want)
	}

	uk := s.Calendars["uk"]
	if uk.Name != "uk" || !reflect.DeepEqual(uk.Weekend, []time.Weekday{time.Saturday, time.Sunday}) ||
		len(uk.Holidays) != 2 || uk.Holidays[1].Day != 28 || len(uk.ExtraBusinessDays) != 1 || uk.Through.Year != 2027 {
		t.Errorf("calendar uk = %+v", uk)
	}
	if r := s.Resources["db/prod/connections"]; r.Capacity != 4 || r.Attributes["tier"] != "gold" || r.Path != "db/prod/connections" {
		t.Errorf("resource = %+v", r)
	}
	if r := s.Resources["hosts/linux/h01"]; r.Capacity != 8 {
		t.Errorf("shorthand resource = %+v", r)
	}
}

func TestLoadFeatures(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s *Schedule)
	}{
		{
			name: "empty file",
			yaml: "",
			check: func(t *testing.T, s *Schedule) {
				if len(s.Jobs) != 0 || s.Summary() != "ok: 0 jobs (0 time triggers, 0 completion triggers), 0 calendars, 0 resources in 1 file" {
					t.Errorf("summary %q", s.Summary())
				}
			},
		},
		{
			name: "merge keys share settings, written keys win",
			yaml: "x-defaults: &d\n  poll: 5m\n  command: [run]\njobs:\n  a:\n    <<: *d\n    poll: 2m\n  b:\n    <<: [*d]\n",
			check: func(t *testing.T, s *Schedule) {
				if a := s.ByName["a"]; a.Poll != 2*time.Minute || a.Command[0] != "run" {
					t.Errorf("a = poll %v command %v", a.Poll, a.Command)
				}
				if b := s.ByName["b"]; b.Poll != 5*time.Minute {
					t.Errorf("b poll = %v", b.Poll)
				}
			},
		},
		{
			name: "holiday ranges",
			yaml: "calendars:\n  uk: {holidays: [2026-12-30..2027-01-02, 2026-12-25]}\n",
			check: func(t *testing.T, s *Schedule) {
				var got []string
				for _, d := range s.Calendars["uk"].Holidays {
					got = append(got, fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day))
				}
				if want := []string{"2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02", "2026-12-25"}; !reflect.DeepEqual(got, want) {
					t.Errorf("holidays = %v, want %v", got, want)
				}
			},
		},
		{
			name: "calendar defaults and empty weekend",
			yaml: "calendars:\n  std:\n  none: {weekend: []}\n  long: {weekend: [Saturday, friday]}\n",
			check: func(t *testing.T, s *Schedule) {
				if w := s.Calendars["std"].Weekend; !reflect.DeepEqual(w, []time.Weekday{time.Saturday, time.Sunday}) {
					t.Errorf("std weekend = %v", w)
				}
				if w := s.Calendars["none"].Weekend; len(w) != 0 {
					t.Errorf("none weekend = %v", w)
				}
				if w := s.Calendars["long"].Weekend; !reflect.DeepEqual(w, []time.Weekday{time.Saturday, time.Friday}) {
					t.Errorf("long weekend = %v", w)
				}
			},
		},
		{
			name: "retries shorthand, inprocess without command, schedule shorthand",
			yaml: "jobs:\n  a:\n    executor: inprocess\n    retries: 3\n    schedule: \"@daily\"\n    triggers: [{schedule: \"@daily\"}]\n",
			check: func(t *testing.T, s *Schedule) {
				a := s.ByName["a"]
				if a.Retries.Max != 3 || a.Command != nil {
					t.Errorf("a = %+v", a.Job)
				}
				if len(a.Triggers) != 2 || a.Triggers[0].ID != "schedule:@daily" || a.Triggers[1].ID != "schedule:@daily#2" {
					t.Errorf("triggers = %+v", a.Triggers)
				}
			},
		},
		{
			name: "several documents",
			yaml: "jobs:\n  a: {command: [x]}\n---\njobs:\n  b: {command: [x], triggers: [{after: a}]}\n",
			check: func(t *testing.T, s *Schedule) {
				if len(s.Jobs) != 2 {
					t.Errorf("jobs = %d, want 2", len(s.Jobs))
				}
			},
		},
		{
			name: "constraint after with period previous is no cycle",
			yaml: "jobs:\n  a:\n    command: [x]\n    constraints: {after: [{job: a, period: previous}]}\n",
			check: func(t *testing.T, s *Schedule) {
				if len(s.ByName["a"].Checks) != 1 {
					t.Errorf("checks = %v", s.ByName["a"].Checks)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			useParser(t, fakeParse)
			s, err := LoadBytes(testOpt, "s.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadBytes:\n%s", strings.Join(errLines(t, err), "\n"))
			}
			tt.check(t, s)
		})
	}
}

// writeFiles creates files under dir from name → content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	useParser(t, fakeParse)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"calendars.yaml":     "calendars:\n  uk: {}\nresources:\n  db: 2\n",
		"etl/extract.yml":    "jobs:\n  extract:\n    command: [x]\n    period: {type: daily, calendar: uk}\n",
		"etl/load.yaml":      "jobs:\n  load:\n    command: [x]\n    triggers: [{after: extract}]\n    resources: {db: 1}\n",
		"README.md":          "not yaml: [",
		"etl/notes.txt":      "jobs: [",
		"z/empty/keep.yaml":  "",
		"z/also-config.yaml": "listen: 127.0.0.1:7070\n",
	})
	s, err := Load(testOpt, dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		filepath.Join(dir, "calendars.yaml"),
		filepath.Join(dir, "etl/extract.yml"),
		filepath.Join(dir, "etl/load.yaml"),
		filepath.Join(dir, "z/also-config.yaml"),
		filepath.Join(dir, "z/empty/keep.yaml"),
	}
	if !reflect.DeepEqual(s.Files, want) {
		t.Errorf("Files = %v, want %v", s.Files, want)
	}
	if got := s.Summary(); got != "ok: 2 jobs (0 time triggers, 1 completion trigger), 1 calendar, 1 resource in 5 files" {
		t.Errorf("Summary() = %q", got)
	}
	if s.ByName["extract"].Calendar == nil {
		t.Error("calendar from another file not resolved")
	}

	// A file named as well as its directory is read once.
	if _, err := Load(testOpt, filepath.Join(dir, "calendars.yaml"), dir); err != nil {
		t.Errorf("Load(file, dir): %v", err)
	}
}

func TestLoadDirectoryErrors(t *testing.T) {
	useParser(t, fakeParse)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":     "calendars:\n  uk: {}\njobs:\n  extract: {command: [x]}\n",
		"b/dup.yaml": "calendars:\n  uk: {}\njobs:\n  load: {command: [x], triggers: [{after: extrct}]}\n  extract: {command: [y]}\n",
		"c.yml":      "jobs:\n  bad: {poll: x, command: [x]}\n",
	})
	_, err := Load(testOpt, dir)
	a, b, c := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b/dup.yaml"), filepath.Join(dir, "c.yml")
	want := []string{
		b + `:2:3: calendar "uk" defined twice (first at ` + a + `:2:3)`,
		b + `:4:43: job "load": after: unknown job "extrct" (did you mean "extract"?)`,
		b + `:5:3: job "extract" defined twice (first at ` + a + `:4:3)`,
		c + `:2:15: job "bad": poll: want a duration like 1m or 90s, not "x"`,
	}
	got := errLines(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadIOErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{name: "no paths", want: "load schedule: no files given"},
		{name: "missing file", paths: []string{filepath.Join(dir, "nope.yaml")}, want: "load schedule: stat " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{name: "empty directory", paths: []string{dir}, want: "load schedule " + dir + ": no .yaml or .yml files in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(testOpt, tt.paths...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load() error = %v, want %s", err, tt.want)
			}
			var list ErrorList
			if errors.As(err, &list) {
				t.Errorf("I/O error should not be an ErrorList")
			}
		})
	}
}

func TestRealTriggerParser(t *testing.T) {
	s, err := LoadBytes(testOpt, "s.yaml", []byte("jobs:\n  a:\n    command: [x]\n    timezone: Europe/Paris\n    triggers: [{schedule: \"30 6 * * 1-5\"}]\n"))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	after := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	if next := s.ByName["a"].Times[0].Next(after); !next.Equal(time.Date(2026, 3, 2, 5, 30, 0, 0, time.UTC)) {
		t.Errorf("Next(%v) = %v, want 06:30 in Paris", after, next)
	}
	_, err = LoadBytes(testOpt, "s.yaml", []byte("jobs:\n  a:\n    command: [x]\n    triggers: [{schedule: \"61 6 * * *\"}]\n"))
	lines := errLines(t, err)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `s.yaml:4:`) || !strings.Contains(lines[0], `job "a": trigger "61 6 * * *": `) {
		t.Errorf("errors = %q, want one trigger error on line 4", lines)
	}
}

// A calendar named as the trigger grammar allows (US-NYSE, case and all)
// is accepted, and a trigger's `using` and a job's period find it.
func TestCalendarNamesAsTriggersWriteThem(t *testing.T) {
	s, err := LoadBytes(testOpt, "s.yaml", []byte(`calendars:
  US-NYSE: {holidays: [2026-12-25]}
  uk: {}
jobs:
  a:
    command: [x]
    period: {type: daily, calendar: US-NYSE}
    schedule: "last business day of month at 18:00 using US-NYSE + uk"
`))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	j := s.ByName["a"]
	if j.Calendar == nil || j.Calendar.Name != "US-NYSE" || s.Calendars["US-NYSE"] == nil {
		t.Errorf("calendar %+v, calendars %v", j.Calendar, s.Calendars)
	}
	after := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if next := j.Times[0].Next(after); !next.Equal(time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("Next(%v) = %v, want 2026-12-31 18:00", after, next)
	}
}

func TestErrorListFormat(t *testing.T) {
	list := ErrorList{
		{Pos: Pos{File: "b.yaml", Line: 1, Col: 1}, Msg: "second"},
		{Pos: Pos{File: "a.yaml", Line: 9, Col: 2}, Msg: "first", Hint: "did you mean \"x\"?"},
	}
	list.Sort()
	if got, want := list.Error(), `a.yaml:9:2: first (did you mean "x"?) (and 1 more errors)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ErrorList(nil).Err() != nil {
		t.Error("empty list Err() != nil")
	}
	if got := (&Error{Pos: Pos{File: "f"}, Msg: "m"}).Error(); got != "f: m" {
		t.Errorf("file-only position = %q", got)
	}
}

// BenchmarkLoadBytes loads a schedule of 500 jobs chained by completion
// triggers, each with a time trigger and constraints.
func BenchmarkLoadBytes(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range 500 {
		fmt.Fprintf(&sb, "  job%d:\n    command: [/bin/true, %d]\n    timezone: Europe/London\n    triggers:\n      - schedule: \"%d 6 * * 1-5\"\n", i, i, i%60)
		if i > 0 {
			fmt.Fprintf(&sb, "      - after: job%d\n    constraints: {after: [job%d], max_running: 1, not_before: \"07:00\"}\n", i-1, i-1)
		}
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadBytes(testOpt, "bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// A syntax error at the end of a large file is found at its line, and
// quickly: the search parses a few prefixes, not one per line.
func TestSyntaxErrorLineInLargeFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("jobs:\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "  job%d:\n    command: [x]\n    poll: 1m\n", i)
	}
	b.WriteString("   bad: 1\n")
	parses := 0
	defer func(f func([]byte) string) { parsePrefix = f }(parsePrefix)
	parsePrefix = func(src []byte) string {
		parses++
		return firstError(src)
	}
	_, err := LoadBytes(testOpt, "big.yaml", []byte(b.String()))
	got := errLines(t, err)
	want := "big.yaml:9002:4: invalid YAML: did not find expected key"
	if len(got) != 1 || got[0] != want {
		t.Errorf("errors = %q, want [%q]", got, want)
	}
	// A binary search over 9,002 lines: about 14 parses, not thousands.
	if parses > 20 {
		t.Errorf("found the line in %d parses of prefixes; want a binary search's (≤ 20)", parses)
	}
}

// The executors a job may name come from the loader's caller: a program
// with other executors (or without local) says so.
func TestExecutorsFromCaller(t *testing.T) {
	src := []byte("jobs:\n  a:\n    command: [x]\n  b:\n    command: [x]\n    executor: batch\n")
	_, err := LoadBytes(Options{Executors: []string{"inprocess"}}, "s.yaml", src)
	want := []string{
		`s.yaml:2:3: job "a": the default executor "local" is not available (set executor: to inprocess)`,
		`s.yaml:6:15: job "b": executor: unknown executor "batch" (want inprocess)`,
	}
	if got := errLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s, err := LoadBytes(Options{Executors: []string{"batch", "local"}}, "s.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if s.ByName["a"].Executor != "local" || s.ByName["b"].Executor != "batch" {
		t.Errorf("executors %q, %q", s.ByName["a"].Executor, s.ByName["b"].Executor)
	}
}

// An inprocess job names its function with function:, the first word of
// command: (the older form) or its own name; function: is for inprocess
// jobs only and does not mix with command:. With Options.Functions the
// name must be a registered one, reported where it is written.
func TestFunctions(t *testing.T) {
	src := []byte(`jobs:
  byfunc:
    executor: inprocess
    function: resize
  bycommand:
    executor: inprocess
    command: [resize, --width, "800"]
  byname:
    executor: inprocess
  local:
    command: [/bin/true]
`)
	s, err := LoadBytes(testOpt, "s.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	for job, want := range map[string]string{"byfunc": "resize", "bycommand": "resize", "byname": "byname", "local": ""} {
		if got := s.ByName[job].Function; got != want {
			t.Errorf("%s: Function = %q, want %q", job, got, want)
		}
	}
	if c := s.ByName["byfunc"].Command; c != nil {
		t.Errorf("byfunc: Command = %q, want none", c)
	}

	bad := []byte(`jobs:
  both:
    executor: inprocess
    function: resize
    command: [resize]
  local:
    function: resize
    command: [x]
  empty:
    executor: inprocess
    function: ""
  list:
    executor: inprocess
    function: [resize]
`)
	_, err = LoadBytes(testOpt, "s.yaml", bad)
	want := []string{
		`s.yaml:4:5: job "both": function and command: use one (function: NAME, with values in params; command: [NAME, ARGS...] is the older form)`,
		`s.yaml:7:5: job "local": function applies to executor inprocess, not local (add executor: inprocess, or use command: for a program)`,
		`s.yaml:11:15: job "empty": function: want the name a Go function was registered under`,
		`s.yaml:14:15: job "list": function: want a string, not a list`,
	}
	if got := errLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	opt := Options{Executors: []string{"inprocess", "local"}, Functions: []string{"report", "resize"}}
	_, err = LoadBytes(opt, "s.yaml", []byte(`jobs:
  a:
    executor: inprocess
    function: resise
  b:
    executor: inprocess
    command: [compress, --all]
  c:
    executor: inprocess
`))
	want = []string{
		`s.yaml:4:15: job "a": unknown function "resise" (did you mean "resize"?)`,
		`s.yaml:7:15: job "b": unknown function "compress" (register it, or use one of report, resize)`,
		`s.yaml:8:3: job "c": unknown function "c" (register it, or use one of report, resize)`,
	}
	if got := errLines(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := LoadBytes(opt, "s.yaml", []byte("jobs:\n  report: {executor: inprocess}\n")); err != nil {
		t.Errorf("a job named like a registered function: %v", err)
	}
}

func TestLoadArtifacts(t *testing.T) {
	useParser(t, fakeParse)
	const yaml = `
jobs:
  extract:
    environment: prod
    command: [x]
    artifacts:
      report: "file:///data/{{environment}}/{{period}}/report.csv"
      csv: "s3://bucket/{{period_type}}/{{period}}/*.csv"
  load:
    command: [x]
    constraints:
      artifact: [{url: "s3://bucket/daily/{{period}}/*.csv", job: extract, period: previous}, "table:sales_{{period}}"]
`
	s, err := LoadBytes(testOpt, "s.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	j := s.ByName["extract"]
	if len(j.Declared) != 2 || j.Declared[0].Name != "csv" || j.Declared[1].Name != "report" {
		t.Fatalf("Declared = %+v, want csv and report, sorted", j.Declared)
	}
	if j.Artifacts["report"] != "file:///data/{{environment}}/{{period}}/report.csv" {
		t.Errorf("Artifacts = %v", j.Artifacts)
	}
	g, err := j.Declared[1].Pattern.Expand("prod:daily/2026-11-26")
	if err != nil || !g.Match("file:///data/prod/2026-11-26/report.csv") {
		t.Errorf("report expands to %s, %v", g, err)
	}
	if c := s.ByName["load"].Checks; len(c) != 1 || c[0].Name() != "artifact" {
		t.Errorf("load's checks = %v", c)
	}
}
