package constraint_test

import (
	"errors"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

func TestLimits(t *testing.T) {
	now := mustTime(t, "2026-11-26T10:00:00Z")
	tests := []struct {
		name       string
		kind       string
		value      any
		lookup     fakeLookup
		wantAction talon.Action
		wantReason string
	}{
		{name: "once_per_period nothing yet", kind: "once_per_period", value: true,
			lookup:     fakeLookup{summaries: map[string]constraint.Counts{"load daily/2026-11-26": {talon.StateFailed: 1}}},
			wantAction: talon.ActionPass, wantReason: "daily/2026-11-26 has no succeeded run"},
		{name: "once_per_period succeeded", kind: "once_per_period", value: true,
			lookup:     fakeLookup{summaries: map[string]constraint.Counts{"load daily/2026-11-26": {talon.StateSucceeded: 1}}},
			wantAction: talon.ActionCancel, wantReason: "daily/2026-11-26 already has a succeeded run"},
		{name: "once_per_period other period succeeded", kind: "once_per_period", value: true,
			lookup:     fakeLookup{summaries: map[string]constraint.Counts{"load daily/2026-11-25": {talon.StateSucceeded: 1}}},
			wantAction: talon.ActionPass, wantReason: "daily/2026-11-26 has no succeeded run"},
		{name: "once_per_period off", kind: "once_per_period", value: false,
			lookup:     fakeLookup{summaries: map[string]constraint.Counts{"load daily/2026-11-26": {talon.StateSucceeded: 1}}},
			wantAction: talon.ActionPass, wantReason: "off"},
		{name: "once_per_period lookup error", kind: "once_per_period", value: true,
			lookup:     fakeLookup{err: errors.New("database is locked")},
			wantAction: talon.ActionBlock, wantReason: "count runs of daily/2026-11-26: database is locked"},
		{name: "max_running room", kind: "max_running", value: 2,
			lookup:     fakeLookup{active: map[string]int{"load": 1}},
			wantAction: talon.ActionPass, wantReason: "1 of 2 running"},
		{name: "max_running reached", kind: "max_running", value: 2,
			lookup:     fakeLookup{active: map[string]int{"load": 2}},
			wantAction: talon.ActionBlock, wantReason: "2 of 2 running"},
		{name: "max_running other job", kind: "max_running", value: 1,
			lookup:     fakeLookup{active: map[string]int{"extract": 5}},
			wantAction: talon.ActionPass, wantReason: "0 of 1 running"},
		{name: "max_running lookup error", kind: "max_running", value: 1,
			lookup:     fakeLookup{err: errors.New("timeout")},
			wantAction: talon.ActionBlock, wantReason: "count running runs of load: timeout"},
		{name: "max_blocked none older", kind: "max_blocked", value: 1,
			wantAction: talon.ActionPass, wantReason: "0 older runs of load blocked (max_blocked 1)"},
		{name: "max_blocked one older", kind: "max_blocked", value: 1,
			lookup:     fakeLookup{blocked: map[string]int{"load": 1}},
			wantAction: talon.ActionCancel, wantReason: "another run of load is blocked (max_blocked 1)"},
		{name: "max_blocked several older", kind: "max_blocked", value: 2,
			lookup:     fakeLookup{blocked: map[string]int{"load": 3}},
			wantAction: talon.ActionCancel, wantReason: "3 older runs of load are blocked (max_blocked 2)"},
		{name: "max_blocked under limit", kind: "max_blocked", value: 2,
			lookup:     fakeLookup{blocked: map[string]int{"load": 1}},
			wantAction: talon.ActionPass, wantReason: "1 older run of load blocked (max_blocked 2)"},
		{name: "max_blocked lookup error", kind: "max_blocked", value: 1,
			lookup:     fakeLookup{err: errors.New("timeout")},
			wantAction: talon.ActionBlock, wantReason: "count blocked runs of load: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, tt.kind, tt.value)
			in := dailyInput(now, "2026-11-26", time.UTC, tt.lookup)
			checkAnswer(t, c.Check(t.Context(), in), tt.wantAction, tt.wantReason, "")
		})
	}
}
