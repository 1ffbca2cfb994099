package schedule

import (
	"errors"
	"testing"
)

// FuzzScheduleLoad checks that no input panics the loader and that every
// error it reports carries the file name and a line ≥ 1, so `talon
// validate` can always point somewhere.
func FuzzScheduleLoad(f *testing.F) {
	f.Add([]byte(fullExample))
	for _, s := range []string{
		"", "jobs:\n  a:\n    command: [x\n", "- a\n", "a: &a [*a]\njobs: *a\n",
		"jobs:\n  a:\n    command: [x]\n    params: &p {x: *p}\n",
		"jobs: &j\n  a: *j\n", "x: &x {<<: *x}\n",
		"jobs:\n  a:\n    command: [x]\n    triggers: [{after: a}]\n    constraints: {after: [a, {job: b}]}\n",
		"calendars: {uk: {holidays: [2026-02-30]}}\njobs: {a: {command: [x], period: {type: daily, calendar: uk}}}\n",
		"resources: {a/b: 1}\njobs: {a: {command: [x], resources: {a/*: 2, a: 1}}}\n",
		"jobs:\n  a:\n    command: [x]\n    schedule: \"30 6 * * 1-5\"\n    timezone: Europe/London\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadBytes(testOpt, "f.yaml", data)
		if err == nil {
			if s == nil {
				t.Fatal("nil schedule and nil error")
			}
			_ = s.Summary()
			return
		}
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("error is %T, want ErrorList: %v", err, err)
		}
		if len(list) == 0 {
			t.Fatal("empty ErrorList returned as error")
		}
		for _, e := range list {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Errorf("error without a position: %q (%+v)", e.Error(), e.Pos)
			}
		}
	})
}
