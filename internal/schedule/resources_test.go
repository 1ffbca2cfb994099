package schedule

import (
	"reflect"
	"strings"
	"testing"

	"github.com/talonhq/talon/internal/resource"
)

func TestLoadResourceRequests(t *testing.T) {
	src := `resources:
  hosts/linux/h01: {attributes: {cores: 8}}
  hosts/linux/h02: {capacity: 2, attributes: {cores: 32}}
  db/prod/connections: 4
  api/quota: {capacity: 100, per: daily}
jobs:
  a:
    command: [x]
    environment: prod
    resources:
      db/{{environment}}/connections: 2
      hosts/linux/*: {count: 1, where: {cores: ">=16"}}
  b:
    command: [x]
    resources:
      - {path: hosts/linux, count: 2}
      - api/quota: 5
`
	s, err := LoadBytes(testOpt, "s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]resource.Request{
		"a": {{Path: "db/{{environment}}/connections", Count: 2}, {Path: "hosts/linux/*", Count: 1, Where: []resource.Filter{{Attr: "cores", Op: ">=", Value: "16"}}}},
		"b": {{Path: "hosts/linux", Count: 2}, {Path: "api/quota", Count: 5}},
	}
	for job, w := range want {
		if got := s.ByName[job].Requests; !reflect.DeepEqual(got, w) {
			t.Errorf("%s: requests = %+v, want %+v", job, got, w)
		}
	}
	if n, ok := s.Tree().Node("hosts/linux/h01"); !ok || n.Capacity != 1 {
		t.Errorf("default capacity: %+v", n)
	}
	if n, _ := s.Tree().Node("api/quota"); n.Per != "daily" {
		t.Errorf("per = %q", n.Per)
	}
}

// TestAgentResources: agents register themselves under hosts/agents at
// run time, so requests there are not checked against the schedule, a
// schedule may not declare nodes there, and a job on executor agent asks
// for exactly one.
func TestAgentResources(t *testing.T) {
	opt := Options{Executors: []string{"agent", "local"}}
	s, err := LoadBytes(opt, "s.yaml", []byte(`jobs:
  a:
    executor: agent
    command: [x]
    resources:
      hosts/agents/*: {count: 2, where: {os: linux, cores: ">=8"}}
  b:
    executor: agent
    command: [x]
    resources: {hosts/agents/build01: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []resource.Request{{Path: "hosts/agents/*", Count: 2, Where: []resource.Filter{{Attr: "cores", Op: ">=", Value: "8"}, {Attr: "os", Op: "=", Value: "linux"}}}}
	if got := s.ByName["a"].Requests; !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	_, err = LoadBytes(opt, "s.yaml", []byte(`resources:
  hosts/agents/h1: 2
jobs:
  none:
    executor: agent
    command: [x]
  two:
    executor: agent
    command: [x]
    resources: {hosts/agents/a: 1, hosts/agents/b: 1}
  local:
    command: [x]
    resources: {hosts/agents/*: 1}
`))
	got := errLines(t, err)
	wantLines := []string{
		"s.yaml:2:3: resource \"hosts/agents/h1\": hosts/agents is where agents register themselves (start `talon agent --name NAME` on the node instead)",
		`s.yaml:4:3: job "none": executor agent runs on the agent a run is allocated: ask for exactly one hosts/agents resource, not 0 (add resources: {hosts/agents/*: 1} (or name an agent, or filter by its labels))`,
		`s.yaml:10:17: job "two": resources: executor agent runs on the agent a run is allocated: ask for exactly one hosts/agents resource, not 2 (add resources: {hosts/agents/*: 1} (or name an agent, or filter by its labels))`,
		`s.yaml:13:17: job "local": resources: "hosts/agents/*" is for runs on agents, and this job's executor is local (set executor: agent)`,
	}
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
}
