package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

func testPause(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if ps, err := s.PausedJobs(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("PausedJobs on an empty store = %v, %v; want none", ps, err)
	}
	want := talon.Pause{Job: "etl", By: "alice", Reason: "disk full", Since: stored(t0)}
	got, created, err := s.PauseJob(ctx, talon.Pause{Job: "etl", By: "alice", Reason: "disk full", Since: t0})
	if err != nil || !created || got != want {
		t.Fatalf("PauseJob = %+v, %v, %v; want %+v, true", got, created, err, want)
	}
	// A second pause keeps the first: who paused it and why stay.
	got, created, err = s.PauseJob(ctx, talon.Pause{Job: "etl", By: "bob", Since: t0.Add(time.Hour)})
	if err != nil || created || got != want {
		t.Fatalf("second PauseJob = %+v, %v, %v; want %+v, false", got, created, err, want)
	}
	if _, _, err := s.PauseJob(ctx, talon.Pause{Job: "a-report", By: "bob", Since: t0}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.PausedJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Job != "a-report" || ps[1] != want {
		t.Fatalf("PausedJobs = %+v; want a-report, then %+v", ps, want)
	}
	got, err = s.ResumeJob(ctx, "etl")
	if err != nil || got != want {
		t.Fatalf("ResumeJob = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.ResumeJob(ctx, "etl"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ResumeJob of a job not paused: err = %v, want ErrNotFound", err)
	}
	if ps, err := s.PausedJobs(ctx); err != nil || len(ps) != 1 || ps[0].Job != "a-report" {
		t.Fatalf("PausedJobs after resume = %+v, %v", ps, err)
	}
}

// CreateRuns applies each run's pause policy in its transaction: a run
// of a paused job is created as asked, recorded skipped naming the pause,
// or refused with the pause; other jobs' runs are created, in batches
// small and large, with and without unique keys.
// testAuditedCreate: CreateRun.Audit is recorded with the run it created,
// in its transaction, on every path a batch may take (one run without a
// key, one with a key, a batch); a run not created (its key held, a
// pause refusing it) records nothing.
func testAuditedCreate(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if _, _, err := s.PauseJob(ctx, talon.Pause{Job: "paused", By: "alice", Since: t0}); err != nil {
		t.Fatal(err)
	}
	entry := func(object string) *talon.AuditEntry {
		return &talon.AuditEntry{Time: t0, Actor: "bob", Action: "trigger", Object: object, Remote: "10.0.0.9:1234", Outcome: "ok", Detail: "ignored"}
	}
	trigger := func(job, key string) store.CreateRun {
		return store.CreateRun{Job: job, Period: "daily/2026-11-26", Trigger: talon.TriggerAPI, Key: key, Now: t0,
			IfPaused: store.PauseRefuse, Audit: entry("job " + job)}
	}
	var batch []store.CreateRun
	for i := range 20 {
		batch = append(batch, trigger(fmt.Sprintf("b%02d", i), ""))
	}
	batch = append(batch, store.CreateRun{Job: "plain", Period: "daily/2026-11-26", Trigger: "cron", FireTime: t0, Now: t0})
	steps := []struct {
		name    string
		runs    []store.CreateRun
		created []bool
	}{
		{"one run without a key", []store.CreateRun{trigger("a", "")}, []bool{true}},
		{"one run with a key", []store.CreateRun{trigger("a", "k1")}, []bool{true}},
		{"its key again", []store.CreateRun{trigger("a", "k1")}, []bool{false}},
		{"paused job", []store.CreateRun{trigger("paused", "")}, []bool{false}},
		{"paused job with a key", []store.CreateRun{trigger("paused", "k2")}, []bool{false}},
		{"batch", batch, nil},
	}
	var want []string
	for _, st := range steps {
		res, err := s.CreateRuns(ctx, st.runs)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for i, c := range res {
			if st.created != nil && c.Created != st.created[i] {
				t.Fatalf("%s: run #%d created = %v, want %v", st.name, i, c.Created, st.created[i])
			}
			if c.Created && st.runs[i].Audit != nil {
				want = append(want, fmt.Sprintf("bob trigger job %s: run %d for daily/2026-11-26", c.Run.Job, c.Run.ID))
			}
		}
	}
	as, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(as) - 1; i >= 0; i-- {
		a := as[i]
		if a.Outcome != "ok" || a.Remote != "10.0.0.9:1234" || !a.Time.Equal(stored(t0)) {
			t.Errorf("entry %+v: want outcome ok, remote and time as given", a)
		}
		got = append(got, fmt.Sprintf("%s %s %s: %s", a.Actor, a.Action, a.Object, a.Detail))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("audit =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func testPausePolicy(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	pause, _, err := s.PauseJob(ctx, talon.Pause{Job: "a", By: "alice", Reason: "maintenance", Since: t0})
	if err != nil {
		t.Fatal(err)
	}
	noReason, _, err := s.PauseJob(ctx, talon.Pause{Job: "c", By: "bob", Since: t0.Add(90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 40} { // one trip, several keyed, the batch path
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var cs []store.CreateRun
			for i := range n {
				fire := t0.Add(time.Duration(n*100+i) * time.Minute)
				for _, job := range []string{"a", "b", "c"} {
					for _, pol := range []store.PausePolicy{store.PauseIgnore, store.PauseSkip, store.PauseRefuse} {
						cs = append(cs, store.CreateRun{Job: job, Period: "daily/2026-11-26", Trigger: "t-" + string(pol), FireTime: fire,
							Reason: "fired", Now: t0, NotBefore: t0.Add(time.Hour), IfPaused: pol})
					}
				}
			}
			if n == 1 {
				// An external trigger without a key, refused and skipped.
				cs = []store.CreateRun{
					{Job: "a", Period: "daily/2026-11-26", Reason: "triggered", Now: t0, IfPaused: store.PauseRefuse},
					{Job: "a", Period: "daily/2026-11-26", Reason: "triggered", Now: t0, IfPaused: store.PauseSkip},
				}
			}
			res, err := s.CreateRuns(ctx, cs)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cs {
				got := res[i]
				var want talon.Pause
				switch c.Job {
				case "a":
					want = pause
				case "c":
					want = noReason
				}
				switch {
				case want.Job == "" || c.IfPaused == store.PauseIgnore:
					if !got.Created || got.Paused != nil || got.Run.State != talon.StateBlocked || got.Run.Reason != c.Reason {
						t.Errorf("#%d %s %q: got %+v, want a blocked run", i, c.Job, c.IfPaused, got)
					}
				case c.IfPaused == store.PauseSkip:
					reason := store.SkippedReason(c.Reason, want)
					if !got.Created || got.Paused != nil || got.Run.State != talon.StateSkipped || got.Run.Reason != reason ||
						got.Run.Finished == nil || !got.Run.RecheckAt.IsZero() {
						t.Errorf("#%d %s skip: got %+v, want a skipped run, finished, reason %q", i, c.Job, got, reason)
					}
				default:
					if got.Created || got.Run.ID != 0 || got.Paused == nil || *got.Paused != want {
						t.Errorf("#%d %s refuse: got %+v, want no run and the pause %+v", i, c.Job, got, want)
					}
				}
			}
			// Created again, the skipped runs hold their keys.
			again, err := s.CreateRuns(ctx, cs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range cs {
				if res[i].Run.ID != 0 && cs[i].FireTime.IsZero() {
					continue // without a key, every trigger is new
				}
				if again[i].Created || again[i].Run.ID != res[i].Run.ID || (again[i].Paused == nil) != (res[i].Paused == nil) {
					t.Errorf("#%d created again: got %+v, want %+v without creating", i, again[i], res[i])
				}
			}
		})
	}
	if _, err := s.CreateRuns(ctx, []store.CreateRun{{Job: "a", Period: "daily/2026-11-26", IfPaused: "later"}}); err == nil {
		t.Error("an unknown pause policy was accepted")
	}
}

// A paused job's runs do not enter ready, whatever the fences asked;
// other jobs' runs do, and the pause ends with ResumeJob.
func testPauseFence(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	a := newRun(t, s, "a", "daily/2026-11-26")
	a2 := newRun(t, s, "a", "daily/2026-11-27")
	b := newRun(t, s, "b", "daily/2026-11-26")
	if _, _, err := s.PauseJob(ctx, talon.Pause{Job: "a", By: "alice", Reason: "maintenance", Since: t0}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Transition(ctx, []store.Transition{
		{RunID: a.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0},
		{RunID: a2.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0, Fence: &store.Fence{MaxRunning: 5}},
		{RunID: b.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		var fe *store.FenceError
		if !errors.As(res[i].Err, &fe) || fe.Constraint != "paused" {
			t.Fatalf("run of a paused job entering ready: err = %v, want a paused fence", res[i].Err)
		}
		want := "job a paused by alice since " + stored(t0).Format(time.RFC3339) + ": maintenance"
		if fe.Reason != want {
			t.Fatalf("fence reason = %q, want %q", fe.Reason, want)
		}
	}
	if res[2].Err != nil {
		t.Fatalf("run of another job: %v", res[2].Err)
	}
	if got := getRun(t, s, a.ID); got.State != talon.StateBlocked {
		t.Fatalf("fenced run moved to %s", got.State)
	}
	// Blocked → blocked, skipped and failed still apply: a paused job's
	// runs can be re-decided and cancelled.
	move(t, s, a2.ID, talon.StateBlocked, talon.StateBlocked)
	move(t, s, a2.ID, talon.StateBlocked, talon.StateSkipped)
	if _, err := s.ResumeJob(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	move(t, s, a.ID, talon.StateBlocked, talon.StateReady)
}

// A pause written through one handle holds for the other at once, as for
// two schedulers.
func testPauseAcrossHandles(t *testing.T, open OpenFunc) {
	h1, h2 := open(t), open(t)
	const n = 6
	var runs []talon.Run
	for i := range n {
		runs = append(runs, newRun(t, h1, "j", fmt.Sprintf("daily/2026-11-%02d", i+1)))
	}
	// Half the runs race the pause; those that won entered ready before
	// it, and after PauseJob returns none may.
	errs := make(chan error, n)
	parallel(t, n/2+1, func(i int) {
		if i == n/2 {
			if _, _, err := h2.PauseJob(t.Context(), talon.Pause{Job: "j", By: "alice", Since: t0}); err != nil {
				errs <- err
			}
			return
		}
		res, err := h1.Transition(t.Context(), []store.Transition{{RunID: runs[i].ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0}})
		var fe *store.FenceError
		switch {
		case err != nil:
			errs <- err
		case res[0].Err != nil && !(errors.As(res[0].Err, &fe) && fe.Constraint == "paused"):
			errs <- res[0].Err
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, r := range runs[n/2:] {
		res := transition(t, h1, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0})
		var fe *store.FenceError
		if !errors.As(res.Err, &fe) || fe.Constraint != "paused" {
			t.Fatalf("run %d entered ready after the pause: err = %v", r.ID, res.Err)
		}
	}
}

// Marks follow talon.CanMark, not talon.CanTransition.
func testMarks(t *testing.T, open OpenFunc) {
	s := open(t)
	for _, from := range talon.States {
		for _, to := range talon.States {
			legal := talon.CanMark(from, to)
			t.Run(fmt.Sprintf("%s→%s", from, to), func(t *testing.T) {
				r := runIn(t, s, "j", "daily/2026-11-26", from)
				res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{from}, To: to, Reason: "marked " + string(to) + " by alice: fixed by hand", Now: t0, Mark: true})
				if legal {
					if res.Err != nil {
						t.Fatalf("legal mark: %v", res.Err)
					}
					if res.Run.State != to {
						t.Fatalf("marked run is %s, want %s", res.Run.State, to)
					}
					return
				}
				if !errors.Is(res.Err, store.ErrConflict) {
					t.Fatalf("illegal mark: err = %v, want ErrConflict", res.Err)
				}
				if got := getRun(t, s, r.ID); got.State != from {
					t.Fatalf("run moved to %s by an illegal mark", got.State)
				}
			})
		}
	}
	// Without Mark, a finished run stays finished.
	r := runIn(t, s, "j", "daily/2026-11-27", talon.StateFailed)
	res := transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateFailed}, To: talon.StateSucceeded, Now: t0})
	if !errors.Is(res.Err, store.ErrConflict) {
		t.Fatalf("failed → succeeded without Mark: err = %v, want ErrConflict", res.Err)
	}
}

// A mark writes its event; a finished run keeps when it finished, a run
// that had not finished is stamped finished at the mark; a mark is
// compare-and-set like any transition.
func testMarkStamps(t *testing.T, open OpenFunc) {
	s := open(t)
	failed := runIn(t, s, "j", "daily/2026-11-26", talon.StateFailed)
	t1 := t0.Add(time.Hour)
	res := transition(t, s, store.Transition{RunID: failed.ID, From: []talon.State{talon.StateFailed}, To: talon.StateSucceeded,
		Reason: "marked succeeded by alice: fixed by hand", Now: t1, Mark: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Run.Finished == nil || !res.Run.Finished.Equal(*failed.Finished) {
		t.Fatalf("finished = %v, want it kept at %v", res.Run.Finished, failed.Finished)
	}
	evs, err := s.Events(t.Context(), failed.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.From != talon.StateFailed || last.To != talon.StateSucceeded || last.Reason != "marked succeeded by alice: fixed by hand" || !last.Time.Equal(stored(t1)) {
		t.Fatalf("last event = %+v", last)
	}

	blocked := newRun(t, s, "j", "daily/2026-11-27")
	res = transition(t, s, store.Transition{RunID: blocked.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateFailed, Reason: "marked failed by bob", Now: t1, Mark: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Run.Finished == nil || !res.Run.Finished.Equal(stored(t1)) || res.Run.Reason != "marked failed by bob" {
		t.Fatalf("marked blocked run: finished %v, reason %q", res.Run.Finished, res.Run.Reason)
	}
	// The run is no longer failed: a stale mark loses.
	res = transition(t, s, store.Transition{RunID: blocked.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateSucceeded, Now: t1, Mark: true})
	if !errors.Is(res.Err, store.ErrConflict) {
		t.Fatalf("stale mark: err = %v, want ErrConflict", res.Err)
	}
}

func testAudit(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	if as, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(as) != 0 {
		t.Fatalf("ListAudit on an empty store = %v, %v", as, err)
	}
	entries := []talon.AuditEntry{
		{Time: t0, Actor: "alice", Action: "pause", Object: "job etl", Remote: "10.0.0.1:5555", Outcome: "ok", Detail: "disk full"},
		{Time: t0.Add(time.Minute), Actor: "bob", Action: "cancel", Object: "run 7", Remote: "10.0.0.2:4444", Outcome: "conflict: run 7 already succeeded; nothing to cancel"},
		{Time: t0.Add(2 * time.Minute), Actor: "alice", Action: "mark", Object: "run 8", Outcome: "ok", Detail: "succeeded: fixed by hand"},
	}
	for i := range entries {
		id, err := s.AddAudit(ctx, entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && id <= entries[i-1].ID {
			t.Fatalf("audit ids do not increase: %d after %d", id, entries[i-1].ID)
		}
		entries[i].ID = id
		entries[i].Time = stored(entries[i].Time)
	}
	tests := []struct {
		name string
		f    store.AuditFilter
		want []int // indexes into entries
	}{
		{name: "all, newest first", f: store.AuditFilter{}, want: []int{2, 1, 0}},
		{name: "actor", f: store.AuditFilter{Actor: "alice"}, want: []int{2, 0}},
		{name: "since", f: store.AuditFilter{Since: t0.Add(time.Minute)}, want: []int{2, 1}},
		{name: "limit", f: store.AuditFilter{Limit: 2}, want: []int{2, 1}},
		{name: "before (next page)", f: store.AuditFilter{BeforeID: entries[1].ID, Limit: 2}, want: []int{0}},
		{name: "actor and since", f: store.AuditFilter{Actor: "alice", Since: t0.Add(time.Second)}, want: []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want := []talon.AuditEntry{}
			for _, i := range tt.want {
				want = append(want, entries[i])
			}
			if got == nil {
				got = []talon.AuditEntry{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ListAudit = %+v\nwant %+v", got, want)
			}
		})
	}
}
