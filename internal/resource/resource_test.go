package resource

import (
	"reflect"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func testTree() *Tree {
	return NewTree([]Node{
		{Path: "hosts/linux/h01", Capacity: 1, Attributes: map[string]string{"cores": "8"}},
		{Path: "hosts/linux/h02", Capacity: 1, Attributes: map[string]string{"cores": "32"}},
		{Path: "hosts/linux/large/h09", Capacity: 1, Attributes: map[string]string{"cores": "64"}},
		{Path: "db/prod/connections", Capacity: 4},
		{Path: "db/dev/connections", Capacity: 1},
		{Path: "api/quota", Capacity: 3, Per: "daily"},
	})
}

func paths(ns []*Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Path)
	}
	return out
}

func TestCandidates(t *testing.T) {
	tr := testTree()
	tests := []struct {
		name    string
		request Request
		want    []string
	}{
		{name: "exact", request: Request{Path: "db/prod/connections"}, want: []string{"db/prod/connections"}},
		{name: "children glob", request: Request{Path: "hosts/linux/*"}, want: []string{"hosts/linux/h01", "hosts/linux/h02"}},
		{name: "glob in the middle", request: Request{Path: "db/*/connections"}, want: []string{"db/dev/connections", "db/prod/connections"}},
		{name: "namespace is the subtree", request: Request{Path: "hosts/linux"}, want: []string{"hosts/linux/h01", "hosts/linux/h02", "hosts/linux/large/h09"}},
		{name: "double star", request: Request{Path: "hosts/**"}, want: []string{"hosts/linux/h01", "hosts/linux/h02", "hosts/linux/large/h09"}},
		{name: "filter >=", request: Request{Path: "hosts/**", Where: []Filter{{Attr: "cores", Op: ">=", Value: "16"}}}, want: []string{"hosts/linux/h02", "hosts/linux/large/h09"}},
		{name: "filter =", request: Request{Path: "hosts/**", Where: []Filter{{Attr: "cores", Op: "=", Value: "8"}}}, want: []string{"hosts/linux/h01"}},
		{name: "environment", request: Request{Path: "db/{{environment}}/connections"}.Resolve("dev"), want: []string{"db/dev/connections"}},
		{name: "no match", request: Request{Path: "gpu/*"}, want: nil},
		{name: "prefix is not a namespace", request: Request{Path: "hosts/lin"}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := paths(tc.request.Candidates(tr)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("candidates = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		expr    string
		want    Filter
		attrs   map[string]string
		match   bool
		wantErr bool
	}{
		{expr: ">=16", want: Filter{Attr: "a", Op: ">=", Value: "16"}, attrs: map[string]string{"a": "16"}, match: true},
		{expr: "> 16", want: Filter{Attr: "a", Op: ">", Value: "16"}, attrs: map[string]string{"a": "16"}, match: false},
		{expr: "<4.5", want: Filter{Attr: "a", Op: "<", Value: "4.5"}, attrs: map[string]string{"a": "4"}, match: true},
		{expr: "gold", want: Filter{Attr: "a", Op: "=", Value: "gold"}, attrs: map[string]string{"a": "gold"}, match: true},
		{expr: "!=gold", want: Filter{Attr: "a", Op: "!=", Value: "gold"}, attrs: map[string]string{}, match: true},
		{expr: "=16", want: Filter{Attr: "a", Op: "=", Value: "16"}, attrs: map[string]string{"a": "16.0"}, match: true},
		{expr: ">=many", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			f, err := ParseFilter("a", tc.expr)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || f != tc.want {
				t.Fatalf("ParseFilter = %+v, %v; want %+v", f, err, tc.want)
			}
			if got := f.Match(tc.attrs); got != tc.match {
				t.Errorf("Match(%v) = %v, want %v", tc.attrs, got, tc.match)
			}
		})
	}
}

func TestAllocate(t *testing.T) {
	tests := []struct {
		name       string
		holds      []Hold
		waiters    []Waiter
		priority   int
		requests   []Request
		want       []Hold
		wantReason string
	}{
		{
			name:     "wildcard takes the first free child",
			holds:    []Hold{{RunID: 1, Path: "hosts/linux/h01", Units: 1}},
			requests: []Request{{Path: "hosts/linux/*", Count: 1}},
			want:     []Hold{{RunID: 9, Path: "hosts/linux/h02", Units: 1}},
		},
		{
			name:       "wildcard full names its holders",
			holds:      []Hold{{RunID: 812, Path: "hosts/linux/h01", Units: 1}, {RunID: 815, Path: "hosts/linux/h02", Units: 1}},
			requests:   []Request{{Path: "hosts/linux/*", Count: 1}},
			wantReason: "waiting for hosts/linux/*: 0 of 1 free (h01 held by run 812, h02 held by run 815)",
		},
		{
			name:       "all or nothing",
			holds:      []Hold{{RunID: 1, Path: "db/prod/connections", Units: 3}},
			requests:   []Request{{Path: "hosts/linux/*", Count: 1}, {Path: "db/prod/connections", Count: 2}},
			wantReason: "waiting for db/prod/connections: 1 of 2 free (held by run 1)",
		},
		{
			name:     "several requests",
			requests: []Request{{Path: "hosts/linux/*", Count: 1, Where: []Filter{{Attr: "cores", Op: ">=", Value: "16"}}}, {Path: "db/prod/connections", Count: 2}},
			want:     []Hold{{RunID: 9, Path: "db/prod/connections", Units: 2}, {RunID: 9, Path: "hosts/linux/h02", Units: 1}},
		},
		{
			name:     "exact served before a wildcard that could take it",
			requests: []Request{{Path: "hosts/linux/*", Count: 1}, {Path: "hosts/linux/h01", Count: 1}},
			want:     []Hold{{RunID: 9, Path: "hosts/linux/h01", Units: 1}, {RunID: 9, Path: "hosts/linux/h02", Units: 1}},
		},
		{
			name:       "reserved for an older waiter",
			holds:      []Hold{{RunID: 1, Path: "db/prod/connections", Units: 2}},
			waiters:    []Waiter{{RunID: 5, Requests: []Request{{Path: "db/prod/connections", Count: 4}}}},
			requests:   []Request{{Path: "db/prod/connections", Count: 1}},
			wantReason: "waiting for db/prod/connections: 0 of 1 free (held by run 1 and reserved for run 5)",
		},
		{
			name:     "a younger waiter reserves nothing",
			holds:    []Hold{{RunID: 1, Path: "db/prod/connections", Units: 2}},
			waiters:  []Waiter{{RunID: 50, Requests: []Request{{Path: "db/prod/connections", Count: 4}}}},
			requests: []Request{{Path: "db/prod/connections", Count: 1}},
			want:     []Hold{{RunID: 9, Path: "db/prod/connections", Units: 1}},
		},
		{
			name:     "higher priority goes first",
			holds:    []Hold{{RunID: 1, Path: "db/prod/connections", Units: 2}},
			waiters:  []Waiter{{RunID: 5, Requests: []Request{{Path: "db/prod/connections", Count: 4}}}},
			priority: 1,
			requests: []Request{{Path: "db/prod/connections", Count: 1}},
			want:     []Hold{{RunID: 9, Path: "db/prod/connections", Units: 1}},
		},
		{
			name:     "a waiter that can never start reserves nothing",
			waiters:  []Waiter{{RunID: 5, Requests: []Request{{Path: "db/prod/connections", Count: 40}}}},
			requests: []Request{{Path: "db/prod/connections", Count: 4}},
			want:     []Hold{{RunID: 9, Path: "db/prod/connections", Units: 4}},
		},
		{
			name:     "consumable of an earlier period does not count",
			holds:    []Hold{{RunID: 1, Path: "api/quota", Units: 3, Period: "daily/2026-11-25"}},
			requests: []Request{{Path: "api/quota", Count: 2}},
			want:     []Hold{{RunID: 9, Path: "api/quota", Units: 2, Period: "daily/2026-11-26"}},
		},
		{
			name:       "consumable used up today",
			holds:      []Hold{{RunID: 1, Path: "api/quota", Units: 3, Period: "daily/2026-11-26"}},
			requests:   []Request{{Path: "api/quota", Count: 1}},
			wantReason: "waiting for api/quota: 0 of 1 free (held by run 1 and 3 of 3 used in daily/2026-11-26)",
		},
		{
			name:       "no match",
			requests:   []Request{Request{Path: "db/{{environment}}/connections", Count: 1}.Resolve("qa")},
			wantReason: "waiting for db/qa/connections: no such resource",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(tc.holds, tc.waiters, now)
			got, reason := l.Allocate(testTree(), 9, tc.priority, tc.requests)
			if reason != tc.wantReason {
				t.Errorf("reason = %q, want %q", reason, tc.wantReason)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("holds = %+v, want %+v", got, tc.want)
			}
			queued := false
			for _, w := range l.Waiters() {
				queued = queued || w.RunID == 9
			}
			if queued != (tc.wantReason != "") {
				t.Errorf("queued = %v, want %v", queued, tc.wantReason != "")
			}
		})
	}
}

// A large request is not starved: once it waits, freed units go to it,
// not to the stream of small requests behind it.
func TestNoStarvation(t *testing.T) {
	tr := NewTree([]Node{{Path: "pool", Capacity: 4}})
	l := NewLedger(nil, nil, now)
	small := func(id int64) bool {
		hs, _ := l.Allocate(tr, id, 0, []Request{{Path: "pool", Count: 1}})
		return hs != nil
	}
	for id := int64(1); id <= 4; id++ {
		if !small(id) {
			t.Fatalf("small run %d not allocated", id)
		}
	}
	if hs, _ := l.Allocate(tr, 10, 0, []Request{{Path: "pool", Count: 4}}); hs != nil {
		t.Fatal("large run allocated while the pool is full")
	}
	next := int64(11)
	for held := int64(1); held <= 4; held++ {
		l.Release(held)
		if small(next) {
			t.Fatalf("small run %d took a unit reserved for the large run", next)
		}
		next++
	}
	if hs, reason := l.Allocate(tr, 10, 0, []Request{{Path: "pool", Count: 4}}); hs == nil {
		t.Fatalf("large run not allocated once the pool drained: %s", reason)
	}
	if len(l.Waiters()) != 4 {
		t.Errorf("waiters = %+v, want the 4 small runs", l.Waiters())
	}
}

func TestReleaseKeepsConsumables(t *testing.T) {
	l := NewLedger([]Hold{{RunID: 1, Path: "api/quota", Units: 2, Period: "daily/2026-11-26"}, {RunID: 1, Path: "db/prod/connections", Units: 1}}, nil, now)
	rel := l.Release(1)
	if len(rel) != 1 || rel[0].Path != "db/prod/connections" {
		t.Errorf("released = %+v", rel)
	}
	n, _ := testTree().Node("api/quota")
	if l.Used(n) != 2 {
		t.Errorf("quota used = %d, want 2", l.Used(n))
	}
}

func TestSatisfiable(t *testing.T) {
	tr := testTree()
	tests := []struct {
		request Request
		want    string
	}{
		{request: Request{Path: "hosts/linux/*", Count: 1}, want: ""},
		{request: Request{Path: "db/prod/connections", Count: 5}, want: `asks for 5 of "db/prod/connections", which has capacity 4`},
		{request: Request{Path: "hosts/**", Count: 2}, want: `asks for 2 of "hosts/**", but its largest match has capacity 1`},
		{request: Request{Path: "hosts/*/*", Count: 1, Where: []Filter{{Attr: "cores", Op: ">", Value: "100"}}}, want: `no resource matching "hosts/*/*" has cores>100`},
		{request: Request{Path: "gpu", Count: 1}, want: `no declared resource matches "gpu"`},
	}
	for _, tc := range tests {
		t.Run(tc.request.String(), func(t *testing.T) {
			if got := tc.request.Satisfiable(tr); got != tc.want {
				t.Errorf("Satisfiable = %q, want %q", got, tc.want)
			}
		})
	}
}
