package schedule

import (
	"reflect"
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
