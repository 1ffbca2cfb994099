package constraint_test

import (
	"errors"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

func TestAfter(t *testing.T) {
	london := mustLoad(t, "Europe/London")
	now := mustTime(t, "2026-11-26T10:00:00Z")
	tests := []struct {
		name       string
		value      any
		summaries  map[string]constraint.Counts
		periodKeys map[string]string
		err        error
		oneshot    bool
		weekly     bool // the run is for weekly/2026-W48 (Nov 23–29)
		wantAction talon.Action
		wantReason string
	}{
		{name: "succeeded", value: "extract",
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateSucceeded: 1, talon.StateFailed: 2}},
			wantAction: talon.ActionPass, wantReason: "extract succeeded in daily/2026-11-26"},
		{name: "no run yet", value: "extract",
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: no run yet"},
		{name: "running", value: []any{"extract"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateRunning: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: 1 running"},
		{name: "failed with a retry blocked", value: "extract",
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 1, talon.StateBlocked: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: 1 blocked, 1 failed"},
		{name: "failed for good default block", value: "extract",
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 2}},
			wantAction: talon.ActionBlock, wantReason: "extract failed in daily/2026-11-26 and has no run left; retry it"},
		{name: "failed for good on_failure block", value: map[string]any{"job": "extract", "on_failure": "block"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 1}},
			wantAction: talon.ActionBlock, wantReason: "extract failed in daily/2026-11-26 and has no run left; retry it"},
		{name: "failed for good on_failure fail", value: []any{map[string]any{"job": "extract", "on_failure": "fail"}},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 1, talon.StateSkipped: 1}},
			wantAction: talon.ActionFail, wantReason: "extract failed in daily/2026-11-26 and has no run left; retry it"},
		{name: "failed for good on_failure cancel", value: map[string]any{"job": "extract", "on_failure": "cancel"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 1}},
			wantAction: talon.ActionCancel, wantReason: "extract failed in daily/2026-11-26 and has no run left; retry it"},
		{name: "failed but running again", value: map[string]any{"job": "extract", "on_failure": "cancel"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateFailed: 1, talon.StateRunning: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: 1 running, 1 failed"},
		{name: "skipped only keeps waiting", value: "extract",
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateSkipped: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: 1 skipped"},
		{name: "previous period", value: map[string]any{"job": "extract", "period": "previous"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-25": {talon.StateSucceeded: 1}},
			wantAction: talon.ActionPass, wantReason: "extract succeeded in daily/2026-11-25"},
		{name: "previous period not done", value: map[string]any{"job": "extract", "period": "previous"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateSucceeded: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-25: no run yet"},
		{name: "same period named", value: map[string]any{"job": "extract", "period": "same"},
			summaries:  map[string]constraint.Counts{"extract daily/2026-11-26": {talon.StateSucceeded: 1}},
			wantAction: talon.ActionPass, wantReason: "extract succeeded in daily/2026-11-26"},
		{name: "upstream of another period type", value: "weekly-extract",
			periodKeys: map[string]string{"weekly-extract 0": "weekly/2026-W48"},
			summaries:  map[string]constraint.Counts{"weekly-extract weekly/2026-W48": {talon.StateReady: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for weekly-extract weekly/2026-W48: 1 ready"},
		{name: "several upstreams all waiting", value: []any{"a", "b", "c"},
			summaries: map[string]constraint.Counts{
				"a daily/2026-11-26": {talon.StateRunning: 1},
				"b daily/2026-11-26": {talon.StateSucceeded: 1},
			},
			wantAction: talon.ActionBlock, wantReason: "waiting for a daily/2026-11-26: 1 running; waiting for c daily/2026-11-26: no run yet"},
		{name: "several upstreams all pass", value: []any{"a", "b"},
			summaries: map[string]constraint.Counts{
				"a daily/2026-11-26": {talon.StateSucceeded: 1},
				"b daily/2026-11-26": {talon.StateSucceeded: 1},
			},
			wantAction: talon.ActionPass, wantReason: "a succeeded in daily/2026-11-26; b succeeded in daily/2026-11-26"},
		{name: "failure beats waiting", value: []any{"a", map[string]any{"job": "b", "on_failure": "fail"}},
			summaries:  map[string]constraint.Counts{"b daily/2026-11-26": {talon.StateFailed: 1}},
			wantAction: talon.ActionFail, wantReason: "b failed in daily/2026-11-26 and has no run left; retry it"},
		{name: "unknown upstream blocks", value: "ghost",
			wantAction: talon.ActionBlock, wantReason: `waiting for ghost: find period: unknown job "ghost"`},
		{name: "lookup error blocks", value: "extract", err: errors.New("database is locked"),
			wantAction: talon.ActionBlock, wantReason: "waiting for extract daily/2026-11-26: count runs: database is locked"},
		{name: "weekly after daily waits for the last day", value: "load", weekly: true,
			summaries:  map[string]constraint.Counts{"load daily/2026-11-23": {talon.StateSucceeded: 1}, "load daily/2026-11-29": {talon.StateRunning: 1}},
			wantAction: talon.ActionBlock, wantReason: "waiting for load daily/2026-11-29: 1 running"},
		{name: "weekly after daily previous is the day before", value: map[string]any{"job": "load", "period": "previous"}, weekly: true,
			summaries:  map[string]constraint.Counts{"load daily/2026-11-28": {talon.StateSucceeded: 1}},
			wantAction: talon.ActionPass, wantReason: "load succeeded in daily/2026-11-28"},
		{name: "oneshot same period", value: "extract", oneshot: true,
			summaries:  map[string]constraint.Counts{"extract oneshot/init": {talon.StateSucceeded: 1}},
			wantAction: talon.ActionPass, wantReason: "extract succeeded in oneshot/init"},
		{name: "oneshot previous period", value: map[string]any{"job": "extract", "period": "previous"}, oneshot: true,
			wantAction: talon.ActionBlock, wantReason: "waiting for extract: oneshot period oneshot/init has no previous period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, "after", tt.value)
			lk := fakeLookup{summaries: tt.summaries, periodKeys: tt.periodKeys, err: tt.err}
			in := dailyInput(now, "2026-11-26", london, lk)
			if tt.weekly {
				start := time.Date(2026, 11, 23, 0, 0, 0, 0, london)
				in.Period = talon.Period{Type: talon.Weekly, Start: start, End: start.AddDate(0, 0, 7)}
				in.Run.Period = in.Period.Key()
			}
			if tt.oneshot {
				in.Period = talon.Period{Type: talon.Oneshot, Name: "init"}
				in.Run.Period = in.Period.Key()
			}
			checkAnswer(t, c.Check(t.Context(), in), tt.wantAction, tt.wantReason, "")
		})
	}
}

func TestAfterNilLookup(t *testing.T) {
	c := mustCompile(t, "after", "extract")
	in := dailyInput(time.Now(), "2026-11-26", time.UTC, nil)
	in.Lookup = nil
	checkAnswer(t, c.Check(t.Context(), in), talon.ActionBlock, "waiting for extract: no lookup of other runs", "")
}
