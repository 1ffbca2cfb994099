package schedule

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/talonhq/talon"
)

// Jobs built in Go go through the loader as the YAML EncodeJob writes:
// a job read from a file, encoded and read again, is the same job.
func TestEncodeJobRoundTrip(t *testing.T) {
	const src = `
calendars:
  uk: {holidays: [2026-12-25]}
resources:
  db/prod/connections: 4
jobs:
  full:
    description: "Fetch prices: all of them"
    period: {type: weekly, calendar: uk}
    timezone: Europe/London
    environment: prod
    group: prices
    triggers:
      - schedule: "30 6 * * 1-5"
        period: previous
      - after: other
      - schedule: "30 6 * * 1-5"
    command: ["/opt/bin/extract", "--out", "a b", "on", "1e3", ""]
    env:
      MODE: "yes"
      DB_PASSWORD: {file: /run/secrets/db}
      TOKEN: {env: EXTRACT_TOKEN}
    dir: /data
    params: {source: lse, n: 3, list: [1, "two", true], nested: {x: 1.5}}
    poll: 90s
    timeout: 2h
    retries: {max: 2, delay: 5m, timeouts: true}
    catchup: all
    catchup_window: 6h
    priority: -5
    constraints:
      not_before: "07:00"
      after: [other, {job: other, period: previous, on_failure: fail}]
      max_running: 2
      once_per_period: true
    resources: {db/prod/connections: 2}
    artifacts: {prices: "s3://bucket/{{period}}/prices.csv"}
  other:
    command: [x]
  byfunc:
    executor: inprocess
    function: resize
  bycommand:
    executor: inprocess
    command: [resize, "800"]
  bare:
    executor: inprocess
`
	orig, err := LoadBytes(testOpt, "s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var texts []Text
	texts = append(texts, Text{Name: "decl.yaml", Data: []byte("calendars:\n  uk: {holidays: [2026-12-25]}\nresources:\n  db/prod/connections: 4\n")})
	for _, j := range orig.Jobs {
		g := j.Job
		g.Triggers = slices.Clone(g.Triggers)
		for i := range g.Triggers {
			g.Triggers[i].ID = ""
		}
		data, err := EncodeJob(g)
		if err != nil {
			t.Fatalf("EncodeJob(%s): %v", j.Name, err)
		}
		texts = append(texts, Text{Name: j.Name, Data: data, Generated: true})
	}
	again, err := LoadAll(testOpt, nil, nil, texts...)
	if err != nil {
		t.Fatalf("load encoded jobs: %v", err)
	}
	for _, j := range orig.Jobs {
		a, b := j.Job, again.ByName[j.Name].Job
		if a.Location.String() != b.Location.String() {
			t.Errorf("%s: zone %s, read back %s", j.Name, a.Location, b.Location)
		}
		a.Location, b.Location = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s read back differs:\n got %+v\nwant %+v", j.Name, b, a)
		}
	}
}

// A job built in Go is checked as a file's is; errors name the job's
// text, without a line and column that would point into text no one
// wrote. Fields the loader computes are refused.
func TestEncodeJobErrors(t *testing.T) {
	data, err := EncodeJob(talon.Job{Name: "a", Executor: "inprocess", Function: "f", Poll: time.Millisecond,
		Constraints: []talon.ConstraintSpec{{Kind: "max_runing", Value: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadAll(Options{Executors: []string{"inprocess"}, Functions: []string{"g"}}, nil, nil, Text{Name: "Jobs[0]", Data: data, Generated: true})
	want := []string{
		`Jobs[0]: job "a": unknown function "f" (register it, or use one of g)`,
		`Jobs[0]: job "a": poll: want a duration from 1s to 24h, not "1ms"`,
		`Jobs[0]: job "a": unknown constraint "max_runing" (did you mean "max_running"?)`,
	}
	got := errLines(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	tests := []struct {
		name string
		job  talon.Job
		want string
	}{
		{name: "trigger id", job: talon.Job{Name: "a", Triggers: []talon.TriggerSpec{{ID: "schedule:@daily", Schedule: "@daily"}}},
			want: `job "a": Triggers[0]: ID "schedule:@daily" is the loader's to set: leave it empty`},
		{name: "zones disagree", job: talon.Job{Name: "a", Timezone: "UTC", Location: mustZone(t, "Europe/Paris")},
			want: `job "a": Location Europe/Paris and Timezone UTC disagree: set one of them`},
		{name: "value and secret", job: talon.Job{Name: "a", Env: map[string]talon.EnvValue{"K": {Value: "v", Env: "E"}}},
			want: `job "a": env K: a value and a secret's source: set one of them`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := EncodeJob(tt.job); err == nil || err.Error() != tt.want {
				t.Errorf("EncodeJob error = %v, want %s", err, tt.want)
			}
		})
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// LoadAll reads files from an fs.FS (a program's embedded files) with
// texts, as one schedule: a job in one may wait for a job in the other.
func TestLoadAllFS(t *testing.T) {
	fsys := fstest.MapFS{
		"sched/a.yaml":   {Data: []byte("jobs:\n  a: {command: [x]}\n")},
		"sched/b.yml":    {Data: []byte("jobs:\n  b: {command: [x], triggers: [{after: c}]}\n")},
		"sched/skip.txt": {Data: []byte("not yaml")},
	}
	s, err := LoadAll(testOpt, fsys, []string{"sched"}, Text{Name: "c", Data: []byte("jobs:\n  c: {command: [x]}\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Files, ","); got != "sched/a.yaml,sched/b.yml,c" {
		t.Errorf("files = %s", got)
	}
	if _, err := LoadAll(testOpt, fsys, []string{"nope"}); err == nil || err.Error() != "load schedule: open nope: file does not exist" {
		t.Errorf("missing path: %v", err)
	}
	if _, err := LoadAll(testOpt, nil, nil); err == nil || err.Error() != "load schedule: nothing to load" {
		t.Errorf("nothing: %v", err)
	}
}
