package constraint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

// fakeLookup answers from maps; keys are "job period" for Summary and
// PeriodKey results are computed from the daily date of at.
type fakeLookup struct {
	summaries map[string]constraint.Counts // "job period"
	active    map[string]int
	blocked   map[string]int // BlockedBefore, whatever the id
	err       error
	// periodKeys overrides PeriodKey: "job offset" → key.
	periodKeys map[string]string
	artifacts  []talon.Artifact
}

func (f fakeLookup) Artifacts(_ context.Context, job, period string) ([]talon.Artifact, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []talon.Artifact
	for _, a := range f.artifacts {
		if a.Period == period && (job == "" || a.Job == job) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f fakeLookup) Summary(_ context.Context, job, period string) (constraint.Counts, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.summaries[job+" "+period], nil
}

func (f fakeLookup) Active(_ context.Context, job string) (int, error) {
	return f.active[job], f.err
}

func (f fakeLookup) BlockedBefore(_ context.Context, job string, _ int64) (int, error) {
	return f.blocked[job], f.err
}

func (f fakeLookup) PeriodKey(_ context.Context, job string, at time.Time, offset int) (string, error) {
	if k, ok := f.periodKeys[fmt.Sprintf("%s %d", job, offset)]; ok {
		return k, nil
	}
	if job == "ghost" {
		return "", errors.New(`unknown job "ghost"`)
	}
	return "daily/" + at.AddDate(0, 0, offset).Format("2006-01-02"), nil
}

// mustCompile compiles or stops the test.
func mustCompile(t *testing.T, kind string, value any) constraint.Constraint {
	t.Helper()
	c, err := constraint.Compile(kind, value)
	if err != nil {
		t.Fatalf("Compile(%q, %#v): %v", kind, value, err)
	}
	return c
}

// dailyInput is a run of job "load" for the daily period of day in loc.
func dailyInput(now time.Time, day string, loc *time.Location, lk constraint.Lookup) constraint.Input {
	start, err := time.ParseInLocation("2006-01-02", day, loc)
	if err != nil {
		panic(err)
	}
	p := talon.Period{Type: talon.Daily, Start: start, End: start.AddDate(0, 0, 1)}
	return constraint.Input{
		Now:    now,
		Run:    talon.Run{ID: 7, Job: "load", Period: p.Key()},
		Job:    &talon.Job{Name: "load", Location: loc},
		Period: p,
		Lookup: lk,
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone: %v", err)
	}
	return loc
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

func TestBuiltinKindsRegistered(t *testing.T) {
	kinds := strings.Join(constraint.Kinds(), " ")
	for _, k := range []string{"after", "command", "max_blocked", "max_running", "not_before", "once_per_period", "start_by"} {
		if !strings.Contains(kinds, k) {
			t.Errorf("kind %q not registered (have %s)", k, kinds)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		value any
		want  string
	}{
		{name: "max_running string", kind: "max_running", value: "two", want: `max_running: want an integer from 1 to 10000, got "two"`},
		{name: "max_running zero", kind: "max_running", value: 0, want: `max_running: want an integer from 1 to 10000, got 0`},
		{name: "max_running fraction", kind: "max_running", value: 1.5, want: `max_running: want an integer from 1 to 10000, got 1.5`},
		{name: "max_blocked negative", kind: "max_blocked", value: -1, want: `max_blocked: want an integer from 1 to 10000, got -1`},
		{name: "max_running too many", kind: "max_running", value: 10001, want: `max_running: want an integer from 1 to 10000, got 10001`},
		{name: "max_running 1e23", kind: "max_running", value: 1e23, want: `max_running: want an integer from 1 to 10000, got 1e+23`},
		{name: "max_blocked too many", kind: "max_blocked", value: 1000000000, want: `max_blocked: want an integer from 1 to 10000, got 1000000000`},
		{name: "once_per_period string", kind: "once_per_period", value: "yes", want: `once_per_period: want true or false, got "yes"`},
		{name: "not_before bad hour", kind: "not_before", value: "25:00", want: `not_before: want a time of day like "07:00" or "07:00:30", got "25:00"`},
		{name: "not_before words", kind: "not_before", value: "seven", want: `not_before: want a time of day like "07:00" or "07:00:30", got "seven"`},
		{name: "not_before sexagesimal", kind: "not_before", value: 420, want: `not_before: want a time of day like "07:00", got 420 (quote the time in YAML)`},
		{name: "not_before list", kind: "not_before", value: []any{"07:00"}, want: `not_before: want a time of day like "07:00", got a list`},
		{name: "start_by bad action", kind: "start_by", value: map[string]any{"at": "09:30", "action": "block"}, want: `start_by: action: want fail or cancel, got "block"`},
		{name: "start_by no at", kind: "start_by", value: map[string]any{"action": "fail"}, want: `start_by: missing "at"`},
		{name: "start_by unknown key", kind: "start_by", value: map[string]any{"at": "09:30", "day": 1}, want: `start_by: unknown key "day" (want at, action)`},
		{name: "start_by bad at", kind: "start_by", value: map[string]any{"at": "9h30"}, want: `start_by: at: want a time of day`},
		{name: "start_by number", kind: "start_by", value: 3, want: `start_by: want a time of day like "09:30" or {at: "09:30", action: fail|cancel}, got 3`},
		{name: "after empty name", kind: "after", value: "", want: `after: want a job name, got an empty string`},
		{name: "after empty list", kind: "after", value: []any{}, want: `after: want at least one job, got an empty list`},
		{name: "after number", kind: "after", value: 3, want: `after: want a job name, or a list`},
		{name: "after item number", kind: "after", value: []any{"a", 3}, want: `after[1]: want a job name or {job: NAME, …}, got 3`},
		{name: "after unknown key", kind: "after", value: []any{map[string]any{"job": "a", "perod": "previous"}}, want: `after: unknown key "perod" (want job, period, on_failure)`},
		{name: "after missing job", kind: "after", value: map[string]any{"period": "previous"}, want: `after: job: want a job name, got nothing`},
		{name: "after bad period", kind: "after", value: map[string]any{"job": "a", "period": "next"}, want: `after: period: want same or previous, got "next"`},
		{name: "after bad on_failure", kind: "after", value: map[string]any{"job": "a", "on_failure": "pass"}, want: `after: on_failure: want block or fail or cancel, got "pass"`},
		{name: "command string", kind: "command", value: "test -e x", want: `command: want a list of arguments, got the string "test -e x" (Talon runs no shell`},
		{name: "command empty", kind: "command", value: []any{}, want: `command: want at least the program to run`},
		{name: "command bad item", kind: "command", value: []any{"x", true}, want: `command[1]: want a string, got true`},
		{name: "command unknown key", kind: "command", value: map[string]any{"argv": []any{"x"}, "shell": true}, want: `command: unknown key "shell" (want argv, timeout)`},
		{name: "command bad timeout", kind: "command", value: map[string]any{"argv": []any{"x"}, "timeout": "soon"}, want: `command: timeout: want a duration from 1s to 1h, like "30s", got "soon"`},
		{name: "command timeout too short", kind: "command", value: map[string]any{"argv": []any{"x"}, "timeout": "1ns"}, want: `command: timeout: want a duration from 1s to 1h, like "30s", got "1ns"`},
		{name: "command timeout too long", kind: "command", value: map[string]any{"argv": []any{"x"}, "timeout": "2h"}, want: `command: timeout: want a duration from 1s to 1h, like "30s", got "2h"`},
		{name: "command long string cut", kind: "command", value: strings.Repeat("x", 1000), want: `command: want a list of arguments, got the string "` + strings.Repeat("x", 79) + `…" (Talon runs no shell; write [sh, -c, "` + strings.Repeat("x", 79) + `…"] if you need one)`},
		{name: "command no argv", kind: "command", value: map[string]any{"timeout": "1s"}, want: `command: missing "argv"`},
		{name: "unknown kind", kind: "no_such", value: true, want: `unknown constraint "no_such"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := constraint.Compile(tt.kind, tt.value)
			if err == nil {
				t.Fatalf("Compile = %v, want error %q", c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		value any
	}{
		{name: "not_before seconds", kind: "not_before", value: "07:00:30"},
		{name: "not_before one-digit hour", kind: "not_before", value: "7:00"},
		{name: "start_by map", kind: "start_by", value: map[string]any{"at": "09:30", "action": "cancel"}},
		{name: "after single map", kind: "after", value: map[string]any{"job": "a", "period": "previous", "on_failure": "fail"}},
		{name: "max_running json float", kind: "max_running", value: 2.0},
		{name: "command number arg", kind: "command", value: []any{"sleep", 5}},
		{name: "command timeout seconds", kind: "command", value: map[string]any{"argv": []any{"true"}, "timeout": 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustCompile(t, tt.kind, tt.value)
		})
	}
}

func TestUpstreamsAndFences(t *testing.T) {
	after := mustCompile(t, "after", []any{"extract", map[string]any{"job": "clean", "period": "previous"}, "extract"})
	if got := strings.Join(constraint.Upstreams(after), ","); got != "extract,clean" {
		t.Errorf("Upstreams(after) = %q, want extract,clean", got)
	}
	if got := constraint.Upstreams(mustCompile(t, "max_running", 1)); got != nil {
		t.Errorf("Upstreams(max_running) = %v, want nil", got)
	}

	tests := []struct {
		name        string
		constraints []constraint.Constraint
		wantMax     int
		wantOnce    bool
	}{
		{name: "none", constraints: []constraint.Constraint{after}},
		{name: "max_running", constraints: []constraint.Constraint{mustCompile(t, "max_running", 3)}, wantMax: 3},
		{name: "smallest max wins", constraints: []constraint.Constraint{mustCompile(t, "max_running", 3), mustCompile(t, "max_running", 2)}, wantMax: 2},
		{name: "once", constraints: []constraint.Constraint{mustCompile(t, "once_per_period", true), after}, wantOnce: true},
		{name: "once off", constraints: []constraint.Constraint{mustCompile(t, "once_per_period", false)}},
		{name: "both", constraints: []constraint.Constraint{mustCompile(t, "once_per_period", true), mustCompile(t, "max_running", 1)}, wantMax: 1, wantOnce: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, o := constraint.Fences(tt.constraints)
			if m != tt.wantMax || o != tt.wantOnce {
				t.Errorf("Fences = (%d, %v), want (%d, %v)", m, o, tt.wantMax, tt.wantOnce)
			}
		})
	}
}

// TestDecidePrecedence runs real constraints through Decide: cancel beats
// fail beats block beats pass, whatever the order.
func TestDecidePrecedence(t *testing.T) {
	london := mustLoad(t, "Europe/London")
	now := mustTime(t, "2026-11-26T10:00:00Z")
	lk := fakeLookup{
		summaries: map[string]constraint.Counts{
			"load daily/2026-11-26":    {talon.StateSucceeded: 1},
			"extract daily/2026-11-26": {talon.StateRunning: 1},
		},
		active: map[string]int{"load": 2},
	}
	pass := mustCompile(t, "max_running", 5)
	block := mustCompile(t, "after", "extract")
	fail := mustCompile(t, "start_by", "09:30")
	cancel := mustCompile(t, "once_per_period", true)
	late := mustCompile(t, "not_before", "11:00")

	tests := []struct {
		name        string
		constraints []constraint.Constraint
		wantAction  talon.Action
		wantReason  string
		wantRecheck time.Time
	}{
		{name: "all pass", constraints: []constraint.Constraint{pass}, wantAction: talon.ActionPass, wantReason: "all constraints pass"},
		{name: "block beats pass", constraints: []constraint.Constraint{pass, block}, wantAction: talon.ActionBlock, wantReason: "after: waiting for extract daily/2026-11-26: 1 running"},
		{name: "fail beats block", constraints: []constraint.Constraint{block, fail, pass}, wantAction: talon.ActionFail, wantReason: "start_by: not started by 09:30 Europe/London"},
		{name: "cancel beats fail", constraints: []constraint.Constraint{fail, cancel, block}, wantAction: talon.ActionCancel, wantReason: "once_per_period: daily/2026-11-26 already has a succeeded run"},
		{name: "cancel first", constraints: []constraint.Constraint{cancel, fail}, wantAction: talon.ActionCancel, wantReason: "once_per_period: daily/2026-11-26 already has a succeeded run"},
		{name: "recheck from not_before", constraints: []constraint.Constraint{late, block}, wantAction: talon.ActionBlock, wantReason: "not_before: not before 11:00 Europe/London (in 1h)", wantRecheck: mustTime(t, "2026-11-26T11:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := dailyInput(now, "2026-11-26", london, lk)
			names := make([]string, len(tt.constraints))
			answers := make([]constraint.Answer, len(tt.constraints))
			for i, c := range tt.constraints {
				names[i] = c.Name()
				answers[i] = c.Check(t.Context(), in)
			}
			action, reason, recheck, ds := constraint.Decide(names, answers)
			if action != tt.wantAction || reason != tt.wantReason {
				t.Errorf("Decide = %s %q, want %s %q", action, reason, tt.wantAction, tt.wantReason)
			}
			if !recheck.Equal(tt.wantRecheck) {
				t.Errorf("recheck = %v, want %v", recheck, tt.wantRecheck)
			}
			if len(ds) != len(tt.constraints) {
				t.Errorf("got %d decisions, want %d", len(ds), len(tt.constraints))
			}
		})
	}
}
