package constraint_test

import (
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

func TestNotBefore(t *testing.T) {
	london := mustLoad(t, "Europe/London")
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name        string
		value       any
		loc         *time.Location
		day         string
		period      talon.PeriodType
		now         string
		wantAction  talon.Action
		wantReason  string
		wantRecheck string
	}{
		{name: "before", value: "07:00", loc: london, day: "2026-11-26", now: "2026-11-26T05:48:00Z",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 Europe/London (in 1h12m)", wantRecheck: "2026-11-26T07:00:00Z"},
		{name: "exactly at", value: "07:00", loc: london, day: "2026-11-26", now: "2026-11-26T07:00:00Z",
			wantAction: talon.ActionPass, wantReason: "after 07:00 Europe/London"},
		{name: "summer time", value: "07:00", loc: london, day: "2026-07-01", now: "2026-07-01T05:58:30Z",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 Europe/London (in 2m)", wantRecheck: "2026-07-01T07:00:00+01:00"},
		{name: "seconds", value: "07:00:30", loc: london, day: "2026-11-26", now: "2026-11-26T07:00:00Z",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00:30 Europe/London (in 30s)", wantRecheck: "2026-11-26T07:00:30Z"},
		{name: "nil zone is UTC", value: "07:00", loc: nil, day: "2026-11-26", now: "2026-11-26T06:00:00Z",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 UTC (in 1h)", wantRecheck: "2026-11-26T07:00:00Z"},
		{name: "later day passes", value: "07:00", loc: london, day: "2026-11-26", now: "2026-11-27T01:00:00Z",
			wantAction: talon.ActionPass, wantReason: "after 07:00 Europe/London"},
		{name: "weekly applies to first day", value: "07:00", loc: london, day: "2026-11-23", period: talon.Weekly, now: "2026-11-23T06:00:00Z",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 Europe/London (in 1h)", wantRecheck: "2026-11-23T07:00:00Z"},
		{name: "weekly later day passes", value: "07:00", loc: london, day: "2026-11-23", period: talon.Weekly, now: "2026-11-25T06:00:00Z",
			wantAction: talon.ActionPass, wantReason: "after 07:00 Europe/London"},
		{name: "oneshot passes", value: "07:00", loc: london, period: talon.Oneshot, now: "2026-11-26T05:00:00Z",
			wantAction: talon.ActionPass, wantReason: "oneshot period has no day"},
		// 2026-03-08, New York springs forward: 02:00 EST becomes 03:00 EDT.
		{name: "spring forward normal time", value: "07:00", loc: ny, day: "2026-03-08", now: "2026-03-08T06:00:00-04:00",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 America/New_York (in 1h)", wantRecheck: "2026-03-08T07:00:00-04:00"},
		{name: "spring forward gap is next valid instant", value: "02:30", loc: ny, day: "2026-03-08", now: "2026-03-08T01:30:00-05:00",
			wantAction: talon.ActionBlock, wantReason: "not before 02:30 America/New_York (in 30m)", wantRecheck: "2026-03-08T03:00:00-04:00"},
		{name: "spring forward gap passes after transition", value: "02:30", loc: ny, day: "2026-03-08", now: "2026-03-08T03:00:00-04:00",
			wantAction: talon.ActionPass, wantReason: "after 02:30 America/New_York"},
		{name: "spring forward before gap", value: "01:59", loc: ny, day: "2026-03-08", now: "2026-03-08T01:00:00-05:00",
			wantAction: talon.ActionBlock, wantReason: "not before 01:59 America/New_York (in 59m)", wantRecheck: "2026-03-08T01:59:00-05:00"},
		// 2026-11-01, New York falls back: 02:00 EDT becomes 01:00 EST.
		{name: "fall back overlap is first occurrence", value: "01:30", loc: ny, day: "2026-11-01", now: "2026-11-01T01:00:00-04:00",
			wantAction: talon.ActionBlock, wantReason: "not before 01:30 America/New_York (in 30m)", wantRecheck: "2026-11-01T01:30:00-04:00"},
		{name: "fall back second 01:15 passes", value: "01:30", loc: ny, day: "2026-11-01", now: "2026-11-01T01:15:00-05:00",
			wantAction: talon.ActionPass, wantReason: "after 01:30 America/New_York"},
		{name: "fall back 25-hour day", value: "07:00", loc: ny, day: "2026-11-01", now: "2026-11-01T00:00:00-04:00",
			wantAction: talon.ActionBlock, wantReason: "not before 07:00 America/New_York (in 8h)", wantRecheck: "2026-11-01T07:00:00-05:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, "not_before", tt.value)
			in := periodInput(t, tt.loc, tt.day, tt.period, mustTime(t, tt.now))
			got := c.Check(t.Context(), in)
			checkAnswer(t, got, tt.wantAction, tt.wantReason, tt.wantRecheck)
		})
	}
}

func TestStartBy(t *testing.T) {
	london := mustLoad(t, "Europe/London")
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name        string
		value       any
		loc         *time.Location
		day         string
		period      talon.PeriodType
		now         string
		wantAction  talon.Action
		wantReason  string
		wantRecheck string
	}{
		{name: "before deadline", value: "09:30", loc: london, day: "2026-11-26", now: "2026-11-26T09:00:00Z",
			wantAction: talon.ActionPass, wantReason: "start by 09:30 Europe/London (in 30m)", wantRecheck: "2026-11-26T09:30:00Z"},
		{name: "at deadline fails", value: "09:30", loc: london, day: "2026-11-26", now: "2026-11-26T09:30:00Z",
			wantAction: talon.ActionFail, wantReason: "not started by 09:30 Europe/London"},
		{name: "map default fail", value: map[string]any{"at": "09:30"}, loc: london, day: "2026-11-26", now: "2026-11-26T10:00:00Z",
			wantAction: talon.ActionFail, wantReason: "not started by 09:30 Europe/London"},
		{name: "map fail", value: map[string]any{"at": "09:30", "action": "fail"}, loc: london, day: "2026-11-26", now: "2026-11-26T10:00:00Z",
			wantAction: talon.ActionFail, wantReason: "not started by 09:30 Europe/London"},
		{name: "map cancel", value: map[string]any{"at": "09:30", "action": "cancel"}, loc: london, day: "2026-11-26", now: "2026-11-26T10:00:00Z",
			wantAction: talon.ActionCancel, wantReason: "not started by 09:30 Europe/London"},
		{name: "map cancel before", value: map[string]any{"at": "09:30", "action": "cancel"}, loc: london, day: "2026-11-26", now: "2026-11-26T09:29:59Z",
			wantAction: talon.ActionPass, wantReason: "start by 09:30 Europe/London (in 1s)", wantRecheck: "2026-11-26T09:30:00Z"},
		{name: "monthly first day", value: "09:30", loc: london, day: "2026-11-01", period: talon.Monthly, now: "2026-11-02T08:00:00Z",
			wantAction: talon.ActionFail, wantReason: "not started by 09:30 Europe/London"},
		{name: "oneshot passes", value: "09:30", loc: london, period: talon.Oneshot, now: "2026-11-26T10:00:00Z",
			wantAction: talon.ActionPass, wantReason: "oneshot period has no day"},
		{name: "spring forward gap deadline", value: "02:30", loc: ny, day: "2026-03-08", now: "2026-03-08T01:59:00-05:00",
			wantAction: talon.ActionPass, wantReason: "start by 02:30 America/New_York (in 1m)", wantRecheck: "2026-03-08T03:00:00-04:00"},
		{name: "spring forward gap deadline passed", value: "02:30", loc: ny, day: "2026-03-08", now: "2026-03-08T03:00:00-04:00",
			wantAction: talon.ActionFail, wantReason: "not started by 02:30 America/New_York"},
		{name: "spring forward 23-hour day", value: "09:30", loc: ny, day: "2026-03-08", now: "2026-03-08T00:00:00-05:00",
			wantAction: talon.ActionPass, wantReason: "start by 09:30 America/New_York (in 8h30m)", wantRecheck: "2026-03-08T09:30:00-04:00"},
		{name: "fall back overlap deadline is first", value: "01:30", loc: ny, day: "2026-11-01", now: "2026-11-01T01:10:00-05:00",
			wantAction: talon.ActionFail, wantReason: "not started by 01:30 America/New_York"},
		{name: "fall back 25-hour day", value: "09:30", loc: ny, day: "2026-11-01", now: "2026-11-01T00:00:00-04:00",
			wantAction: talon.ActionPass, wantReason: "start by 09:30 America/New_York (in 10h30m)", wantRecheck: "2026-11-01T09:30:00-05:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, "start_by", tt.value)
			in := periodInput(t, tt.loc, tt.day, tt.period, mustTime(t, tt.now))
			got := c.Check(t.Context(), in)
			checkAnswer(t, got, tt.wantAction, tt.wantReason, tt.wantRecheck)
		})
	}
}

// periodInput builds the input of a run for the period of type pt (daily
// when empty) starting on day in loc; oneshot periods have no start.
func periodInput(t *testing.T, loc *time.Location, day string, pt talon.PeriodType, now time.Time) constraint.Input {
	t.Helper()
	if pt == "" {
		pt = talon.Daily
	}
	p := talon.Period{Type: pt}
	if pt == talon.Oneshot {
		p.Name = "once"
	} else {
		zone := loc
		if zone == nil {
			zone = time.UTC
		}
		start, err := time.ParseInLocation("2006-01-02", day, zone)
		if err != nil {
			t.Fatalf("parse day: %v", err)
		}
		p.Start = start
	}
	return constraint.Input{
		Now:    now,
		Run:    talon.Run{ID: 1, Job: "load", Period: p.Key()},
		Job:    &talon.Job{Name: "load", Location: loc},
		Period: p,
		Lookup: fakeLookup{},
	}
}

func checkAnswer(t *testing.T, got constraint.Answer, action talon.Action, reason, recheck string) {
	t.Helper()
	if got.Action != action || got.Reason != reason {
		t.Errorf("Check = %s %q, want %s %q", got.Action, got.Reason, action, reason)
	}
	var want time.Time
	if recheck != "" {
		want = mustTime(t, recheck)
	}
	if !got.RecheckAt.Equal(want) {
		t.Errorf("RecheckAt = %v, want %v", got.RecheckAt, want)
	}
}

// TestNotBeforeMidnightGap covers a zone whose clocks skip midnight
// (Havana springs forward from 00:00 to 01:00 on 2026-03-08), where the
// period's day starts at 01:00.
func TestNotBeforeMidnightGap(t *testing.T) {
	havana := mustLoad(t, "America/Havana")
	start := mustTime(t, "2026-03-08T01:00:00-04:00").In(havana)
	c := mustCompile(t, "not_before", "00:30")
	in := constraint.Input{
		Now:    mustTime(t, "2026-03-07T23:50:00-05:00"),
		Run:    talon.Run{ID: 1, Job: "load", Period: "daily/2026-03-08"},
		Job:    &talon.Job{Name: "load", Location: havana},
		Period: talon.Period{Type: talon.Daily, Start: start},
	}
	got := c.Check(t.Context(), in)
	checkAnswer(t, got, talon.ActionBlock, "not before 00:30 America/Havana (in 10m)", "2026-03-08T01:00:00-04:00")
}
