package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

func testCreateFields(t *testing.T, open OpenFunc) {
	s := open(t)
	notBefore := t0.Add(90 * time.Second)
	tests := []struct {
		name string
		in   store.CreateRun
		want talon.Run
	}{
		{
			name: "time trigger with everything",
			in: store.CreateRun{
				Job: "load", Period: "prod:daily/2026-11-26", Environment: "prod", Trigger: "cron",
				FireTime: t0, Executor: "local", Attempt: 2, RetryOf: 0,
				Params: map[string]string{"region": "eu", "n": "3"}, Reason: "fired", Now: t0, NotBefore: notBefore,
			},
			want: talon.Run{
				Job: "load", Period: "prod:daily/2026-11-26", Environment: "prod", Trigger: "cron",
				FireTime: stored(t0), Executor: "local", Attempt: 2, State: talon.StateBlocked,
				Params: map[string]string{"region": "eu", "n": "3"}, Reason: "fired", Created: stored(t0),
				RecheckAt: stored(notBefore),
			},
		},
		{
			name: "defaults",
			in:   store.CreateRun{Job: "load", Period: "daily/2026-11-26", Trigger: "api", Now: t0},
			want: talon.Run{Job: "load", Period: "daily/2026-11-26", Trigger: "api", Attempt: 1,
				State: talon.StateBlocked, Created: stored(t0)},
		},
		{
			name: "key",
			in:   store.CreateRun{Job: "load", Period: "daily/2026-11-26", Trigger: "api", Key: "k1", Now: t0},
			want: talon.Run{Job: "load", Period: "daily/2026-11-26", Trigger: "api", Key: "k1", Attempt: 1,
				State: talon.StateBlocked, Created: stored(t0)},
		},
		{
			name: "skipped missed fire is finished",
			in: store.CreateRun{Job: "load", Period: "daily/2026-11-25", Trigger: "cron", FireTime: t0.Add(-24 * time.Hour),
				State: talon.StateSkipped, Reason: "missed: catch-up policy latest", Now: t0},
			want: talon.Run{Job: "load", Period: "daily/2026-11-25", Trigger: "cron", FireTime: stored(t0.Add(-24 * time.Hour)),
				Attempt: 1, State: talon.StateSkipped, Reason: "missed: catch-up policy latest", Created: stored(t0),
				Finished: ptr(stored(t0))},
		},
		{
			name: "retry",
			in:   store.CreateRun{Job: "load", Period: "daily/2026-11-26", Trigger: "retry", Attempt: 2, RetryOf: 7, Now: t0},
			want: talon.Run{Job: "load", Period: "daily/2026-11-26", Trigger: "retry", Attempt: 2, RetryOf: 7,
				Key: "retry-of:7", State: talon.StateBlocked, Created: stored(t0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := create(t, s, tt.in)[0]
			if !c.Created {
				t.Fatalf("Created = false for a new run")
			}
			tt.want.ID = c.Run.ID
			checkRun(t, "CreateRuns", c.Run, tt.want)
			checkRun(t, "GetRun", getRun(t, s, c.Run.ID), tt.want)
			evs, err := s.Events(ctxOf(t), c.Run.ID)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			wantEv := talon.Event{ID: evs[0].ID, RunID: c.Run.ID, Time: stored(t0), From: "", To: tt.want.State, Reason: tt.want.Reason,
				Type: talon.EventTransition, Job: tt.want.Job, Period: tt.want.Period}
			if len(evs) != 1 || evs[0] != wantEv {
				t.Errorf("events = %+v, want [%+v]", evs, wantEv)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// checkRun compares the fields a store keeps, reporting each difference.
func checkRun(t *testing.T, what string, got, want talon.Run) {
	t.Helper()
	diff := func(field string, g, w any) { t.Errorf("%s: run %d %s = %v, want %v", what, got.ID, field, g, w) }
	if got.ID != want.ID {
		diff("ID", got.ID, want.ID)
	}
	if got.Job != want.Job || got.Period != want.Period || got.Environment != want.Environment {
		diff("job/period/env", []string{got.Job, got.Period, got.Environment}, []string{want.Job, want.Period, want.Environment})
	}
	if got.State != want.State {
		diff("State", got.State, want.State)
	}
	if got.Attempt != want.Attempt || got.RetryOf != want.RetryOf {
		diff("Attempt/RetryOf", []int64{int64(got.Attempt), got.RetryOf}, []int64{int64(want.Attempt), want.RetryOf})
	}
	if got.Executor != want.Executor || got.Trigger != want.Trigger || got.Key != want.Key {
		diff("Executor/Trigger/Key", []string{got.Executor, got.Trigger, got.Key}, []string{want.Executor, want.Trigger, want.Key})
	}
	if got.Reason != want.Reason || got.Owner != want.Owner || got.Handle != want.Handle {
		diff("Reason/Owner/Handle", []string{got.Reason, got.Owner, got.Handle}, []string{want.Reason, want.Owner, want.Handle})
	}
	if !got.FireTime.Equal(want.FireTime) || got.FireTime.Location() != time.UTC {
		diff("FireTime", got.FireTime, want.FireTime)
	}
	if !got.Created.Equal(want.Created) || got.Created.Location() != time.UTC {
		diff("Created", got.Created, want.Created)
	}
	if !got.RecheckAt.Equal(want.RecheckAt) {
		diff("RecheckAt", got.RecheckAt, want.RecheckAt)
	}
	if !sameTime(got.Started, want.Started) {
		diff("Started", fmtPtr(got.Started), fmtPtr(want.Started))
	}
	if !sameTime(got.Finished, want.Finished) {
		diff("Finished", fmtPtr(got.Finished), fmtPtr(want.Finished))
	}
	if !maps.Equal(got.Params, want.Params) {
		diff("Params", got.Params, want.Params)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b) && a.Location() == time.UTC
}

func fmtPtr(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}

func testCreateIdempotent(t *testing.T, open OpenFunc) {
	s := open(t)
	fire := t0
	base := store.CreateRun{Job: "a", Period: "daily/2026-11-26", Trigger: "cron", FireTime: fire, Now: t0}
	with := func(f func(*store.CreateRun)) store.CreateRun { c := base; f(&c); return c }
	tests := []struct {
		name   string
		first  store.CreateRun
		second store.CreateRun
		same   bool
	}{
		{name: "same fire", first: base, second: base, same: true},
		{name: "same fire, other reason and params", first: base,
			second: with(func(c *store.CreateRun) { c.Reason = "again"; c.Params = map[string]string{"x": "1"} }), same: true},
		{name: "other fire time", first: base, second: with(func(c *store.CreateRun) { c.FireTime = fire.Add(time.Minute) })},
		{name: "other trigger", first: base, second: with(func(c *store.CreateRun) { c.Trigger = "cron2" })},
		{name: "other period", first: base, second: with(func(c *store.CreateRun) { c.Period = "daily/2026-11-27" })},
		{name: "other job", first: base, second: with(func(c *store.CreateRun) { c.Job = "b" })},
		{name: "same key, other fire",
			first:  with(func(c *store.CreateRun) { c.Key = "k" }),
			second: with(func(c *store.CreateRun) { c.Key = "k"; c.FireTime = time.Time{}; c.Trigger = "api" }), same: true},
		{name: "same key, other job",
			first:  with(func(c *store.CreateRun) { c.Job = "c"; c.Key = "k" }),
			second: with(func(c *store.CreateRun) { c.Job = "d"; c.Key = "k" })},
		{name: "other key, same fire",
			first:  with(func(c *store.CreateRun) { c.Job = "e"; c.Key = "k1" }),
			second: with(func(c *store.CreateRun) { c.Job = "e"; c.Key = "k2" })},
		{name: "external without key is never deduplicated",
			first:  with(func(c *store.CreateRun) { c.Job = "f"; c.Trigger = "api"; c.FireTime = time.Time{} }),
			second: with(func(c *store.CreateRun) { c.Job = "f"; c.Trigger = "api"; c.FireTime = time.Time{} })},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case gets its own period namespace so cases don't collide.
			ns := fmt.Sprintf("case%d:", i)
			tt.first.Period = ns + tt.first.Period
			tt.second.Period = ns + tt.second.Period
			a := create(t, s, tt.first)[0]
			b := create(t, s, tt.second)[0]
			if !a.Created {
				t.Fatalf("first creation: Created = false")
			}
			if tt.same {
				if b.Created || b.Run.ID != a.Run.ID {
					t.Fatalf("second creation = (run %d, created %v), want the existing run %d", b.Run.ID, b.Created, a.Run.ID)
				}
				checkRun(t, "existing", b.Run, a.Run)
			} else if !b.Created || b.Run.ID == a.Run.ID {
				t.Fatalf("second creation = (run %d, created %v), want a new run", b.Run.ID, b.Created)
			}
			if tt.second.Key == "" && tt.second.FireTime.IsZero() {
				return // external runs without a key are new every time
			}
			// Sent again in one batch, both already exist.
			c := create(t, s, tt.first, tt.second)
			if c[0].Created || c[0].Run.ID != a.Run.ID {
				t.Errorf("batch first = (run %d, created %v), want existing run %d", c[0].Run.ID, c[0].Created, a.Run.ID)
			}
			if c[1].Created || c[1].Run.ID != b.Run.ID {
				t.Errorf("batch second = (run %d, created %v), want existing run %d", c[1].Run.ID, c[1].Created, b.Run.ID)
			}
		})
	}

	t.Run("duplicate within one batch", func(t *testing.T) {
		p := store.CreateRun{Job: "g", Period: "daily/2026-11-26", Trigger: "cron", FireTime: fire, Now: t0}
		out := create(t, s, p, p, p)
		if !out[0].Created || out[1].Created || out[2].Created {
			t.Fatalf("Created = %v %v %v, want true false false", out[0].Created, out[1].Created, out[2].Created)
		}
		if out[1].Run.ID != out[0].Run.ID || out[2].Run.ID != out[0].Run.ID {
			t.Fatalf("ids = %d %d %d, want one run", out[0].Run.ID, out[1].Run.ID, out[2].Run.ID)
		}
		evs, err := s.Events(ctxOf(t), out[0].Run.ID)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events = %v, %v; want one creation event", evs, err)
		}
	})
}

func testCreateConcurrent(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	const (
		workers = 8
		runs    = 25
	)
	var ps []store.CreateRun
	for i := range runs {
		ps = append(ps, store.CreateRun{Job: "j", Period: "daily/2026-11-26", Trigger: "cron",
			FireTime: t0.Add(time.Duration(i) * time.Minute), Now: t0})
	}
	ps = append(ps, store.CreateRun{Job: "j", Period: "daily/2026-11-26", Trigger: "api", Key: "client-key", Now: t0})
	ids := make([][]int64, workers)
	created := make([]int, workers)
	errs := make([]error, workers)
	parallel(t, workers, func(w int) {
		// Each worker sends the runs in its own order, as two schedulers
		// that list jobs differently would.
		order := make([]store.CreateRun, len(ps))
		for i := range ps {
			order[i] = ps[(i+w*7)%len(ps)]
		}
		out, err := handles[w%2].CreateRuns(t.Context(), order)
		if err != nil {
			errs[w] = err
			return
		}
		ids[w] = make([]int64, len(ps))
		for i, c := range out {
			ids[w][(i+w*7)%len(ps)] = c.Run.ID
			if c.Created {
				created[w]++
			}
		}
	})
	total := 0
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		total += created[w]
		for i := range ps {
			if ids[w][i] != ids[0][i] {
				t.Errorf("run #%d: worker %d got id %d, worker 0 got %d", i, w, ids[w][i], ids[0][i])
			}
		}
	}
	if total != len(ps) {
		t.Errorf("%d runs reported created, want %d", total, len(ps))
	}
	all, err := handles[0].ListRuns(t.Context(), store.RunFilter{Job: "j"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(ps) {
		t.Errorf("%d runs stored, want %d", len(all), len(ps))
	}
}

// testRetryOnce: a run is retried at most once, whoever asks (the
// engine's automatic retry, an operator, two schedulers at once): every
// retry of run N takes the key retry-of:N, so one is created and the
// others get it back.
func testRetryOnce(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	orig := newRun(t, handles[0], "load", "daily/2026-11-26")
	retry := store.CreateRun{Job: "load", Period: "daily/2026-11-26", Trigger: "retry", Attempt: 2, RetryOf: orig.ID, Now: t0}
	const workers = 6
	ids := make([]int64, workers)
	created := make([]bool, workers)
	errs := make([]error, workers)
	parallel(t, workers, func(w int) {
		out, err := handles[w%2].CreateRuns(t.Context(), []store.CreateRun{retry})
		if err != nil {
			errs[w] = err
			return
		}
		ids[w], created[w] = out[0].Run.ID, out[0].Created
	})
	n := 0
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if created[w] {
			n++
		}
		if ids[w] != ids[0] {
			t.Errorf("worker %d got run %d, worker 0 got %d", w, ids[w], ids[0])
		}
	}
	if n != 1 {
		t.Errorf("%d retries of run %d reported created, want 1", n, orig.ID)
	}
	// A key of its own cannot dodge the rule.
	bad := retry
	bad.Key = "mine"
	if _, err := handles[0].CreateRuns(t.Context(), []store.CreateRun{bad}); err == nil {
		t.Errorf("a retry with key %q was accepted", bad.Key)
	}
	runs, err := handles[0].ListRuns(t.Context(), store.RunFilter{Job: "load"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Errorf("%d runs stored, want the original and one retry", len(runs))
	}
}

func testCreateInvalid(t *testing.T, open OpenFunc) {
	s := open(t)
	tests := []struct {
		name string
		in   store.CreateRun
	}{
		{name: "no job", in: store.CreateRun{Period: "daily/2026-11-26", Now: t0}},
		{name: "no period", in: store.CreateRun{Job: "a", Now: t0}},
		{name: "running", in: store.CreateRun{Job: "a", Period: "daily/2026-11-26", State: talon.StateRunning, Now: t0}},
		{name: "unknown state", in: store.CreateRun{Job: "a", Period: "daily/2026-11-26", State: "paused", Now: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok := store.CreateRun{Job: "ok", Period: "daily/2026-11-26", Now: t0}
			if _, err := s.CreateRuns(t.Context(), []store.CreateRun{ok, tt.in}); err == nil {
				t.Fatalf("CreateRuns accepted %+v", tt.in)
			}
		})
	}
	// The batch is all or nothing.
	runs, err := s.ListRuns(t.Context(), store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Errorf("%d runs stored by rejected batches", len(runs))
	}
}
