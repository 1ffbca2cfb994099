package storetest

import (
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// testEventFeed: every event carries its type and the run's job and
// period; progress and artifacts are events of the feed with their
// payload, written with them, but not part of the run's history; a
// re-decision is a decision event only when its reason changes.
func testEventFeed(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	r := newRun(t, s, "load", "daily/2026-11-26")
	blocked := []talon.State{talon.StateBlocked}
	for _, tr := range []store.Transition{
		{RunID: r.ID, From: blocked, To: talon.StateBlocked, Reason: "waiting for a", Quiet: true, Now: t0},
		{RunID: r.ID, From: blocked, To: talon.StateBlocked, Reason: "waiting for a", Quiet: true, Now: t0}, // unchanged: no event
		{RunID: r.ID, From: blocked, To: talon.StateReady, Reason: "all constraints pass", Now: t0},
	} {
		if res := transition(t, s, tr); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	move(t, s, r.ID, talon.StateReady, talon.StateRunning)
	pct := 40.0
	if err := s.SetProgress(ctx, r.ID, talon.Progress{Percent: &pct, Message: "rows", Updated: t0}); err != nil {
		t.Fatal(err)
	}
	a, err := s.AddArtifact(ctx, r.ID, "file:///data/out.csv", "", t0)
	if err != nil {
		t.Fatal(err)
	}
	move(t, s, r.ID, talon.StateRunning, talon.StateSucceeded)

	all, err := s.EventsAfter(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		typ      talon.EventType
		from, to talon.State
	}
	want := []row{
		{talon.EventTransition, "", talon.StateBlocked},
		{talon.EventDecision, talon.StateBlocked, talon.StateBlocked},
		{talon.EventTransition, talon.StateBlocked, talon.StateReady},
		{talon.EventTransition, talon.StateReady, talon.StateRunning},
		{talon.EventProgress, "", talon.StateRunning},
		{talon.EventArtifact, "", talon.StateRunning},
		{talon.EventTransition, talon.StateRunning, talon.StateSucceeded},
	}
	if len(all) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(all), len(want), all)
	}
	for i, w := range want {
		e := all[i]
		if e.Type != w.typ || e.From != w.from || e.To != w.to {
			t.Errorf("event %d = %s %q → %q, want %s %q → %q", i, e.Type, e.From, e.To, w.typ, w.from, w.to)
		}
		if e.RunID != r.ID || e.Job != "load" || e.Period != "daily/2026-11-26" {
			t.Errorf("event %d: run %d job %q period %q, want run %d of load daily/2026-11-26", i, e.RunID, e.Job, e.Period, r.ID)
		}
	}
	p := all[4].Progress
	if p == nil || p.Percent == nil || *p.Percent != 40 || p.Message != "rows" || all[4].Artifact != nil {
		t.Errorf("progress event payload = %+v / %+v", p, all[4].Artifact)
	}
	if got := all[5].Artifact; got == nil || got.ID != a.ID || got.URL != a.URL || got.RunID != r.ID || all[5].Progress != nil {
		t.Errorf("artifact event payload = %+v, want %+v", got, a)
	}
	if !all[4].Time.Equal(stored(t0)) || !all[5].Time.Equal(stored(t0)) {
		t.Errorf("report event times = %v, %v; want %v", all[4].Time, all[5].Time, stored(t0))
	}

	hist, err := s.Events(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 {
		t.Fatalf("history: %d events, want the 5 transitions and decisions: %+v", len(hist), hist)
	}
	for _, e := range hist {
		if e.Type != talon.EventTransition && e.Type != talon.EventDecision {
			t.Errorf("history has a %s event", e.Type)
		}
	}
}

// wakeWait bounds how long a test waits for a wake-up that must come.
const wakeWait = 10 * time.Second

func waitWake(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wakeWait):
		t.Fatalf("no wake-up within %s after %s", wakeWait, what)
	}
}

// testSubscribe: a subscriber is woken once its subscription is active,
// then after every write that adds events — made through another handle
// on the same database, as another scheduler (PostgreSQL) or the API
// (SQLite) would make it — and not after its subscription ends.
func testSubscribe(t *testing.T, open OpenFunc) {
	s1 := open(t)
	s2 := open(t)
	ctx := ctxOf(t)
	wake, stop := s1.Subscribe()
	defer stop()
	waitWake(t, wake, "subscribing")
	// A second subscriber on the same handle is told too.
	wake2, stop2 := s1.Subscribe()
	waitWake(t, wake2, "subscribing a second time")

	r := newRun(t, s2, "a", "daily/2026-11-26")
	waitWake(t, wake, "a run was created through another handle")
	waitWake(t, wake2, "a run was created through another handle")
	stop2()

	move(t, s2, r.ID, talon.StateBlocked, talon.StateReady)
	waitWake(t, wake, "a transition")
	move(t, s2, r.ID, talon.StateReady, talon.StateRunning)
	waitWake(t, wake, "a transition")
	pct := 10.0
	if err := s2.SetProgress(ctx, r.ID, talon.Progress{Percent: &pct}); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "a progress report")
	if _, err := s2.AddArtifact(ctx, r.ID, "file:///x", "", t0); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "an artifact")
	// The feed has what woke the subscriber.
	evs, err := s1.EventsAfter(ctx, 0, 100)
	if err != nil || len(evs) != 5 || evs[4].Type != talon.EventArtifact {
		t.Fatalf("EventsAfter after the wake-ups = %+v, %v; want 5 events ending with the artifact", evs, err)
	}
}

// testQuietAnswer: a quiet re-decision whose answer is the same writes
// no event even when its words changed — an answer that time alone will
// change counts down to its RecheckAt — while a changed action, a new
// time, or new words of an answer only an event can change write one.
// The run's reason is the latest either way.
func testQuietAnswer(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := ctxOf(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	at7 := t0.Add(2 * time.Hour)
	notBefore := func(in string, recheck time.Time) talon.Decision {
		return talon.Decision{Constraint: "not_before", Action: talon.ActionBlock, Reason: "not before 07:00 (in " + in + ")", RecheckAt: recheck}
	}
	after := func(action talon.Action, reason string) talon.Decision {
		return talon.Decision{Constraint: "after", Action: action, Reason: reason}
	}
	tests := []struct {
		name      string
		ds        []talon.Decision
		wantEvent bool
	}{
		{name: "first answer", ds: []talon.Decision{notBefore("2h", at7), after(talon.ActionPass, "a succeeded")}, wantEvent: true},
		{name: "counting down", ds: []talon.Decision{notBefore("1h59m", at7), after(talon.ActionPass, "a succeeded")}, wantEvent: false},
		{name: "counting down again", ds: []talon.Decision{notBefore("1h", at7), after(talon.ActionPass, "a succeeded")}, wantEvent: false},
		{name: "another time", ds: []talon.Decision{notBefore("3h", at7.Add(time.Hour)), after(talon.ActionPass, "a succeeded")}, wantEvent: true},
		{name: "another action", ds: []talon.Decision{notBefore("2h", at7.Add(time.Hour)), after(talon.ActionBlock, "waiting for a: 1 running")}, wantEvent: true},
		{name: "new words of an event-driven answer", ds: []talon.Decision{notBefore("1h", at7.Add(time.Hour)), after(talon.ActionBlock, "waiting for a: 1 failed")}, wantEvent: true},
	}
	for _, tt := range tests {
		before, err := s.Events(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		reason := tt.ds[0].Constraint + ": " + tt.ds[0].Reason
		res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateBlocked,
			Reason: reason, Quiet: true, Now: t0, Decisions: tt.ds})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		after, err := s.Events(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(after) - len(before); got != map[bool]int{false: 0, true: 1}[tt.wantEvent] {
			t.Errorf("%s: %d events written, want event: %v", tt.name, got, tt.wantEvent)
		}
		if got := getRun(t, s, r.ID).Reason; got != reason {
			t.Errorf("%s: run's reason %q, want the latest %q", tt.name, got, reason)
		}
	}
}
