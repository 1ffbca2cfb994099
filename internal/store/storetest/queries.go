package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

func testProgress(t *testing.T, open OpenFunc) {
	s := open(t)
	r := runIn(t, s, "j", "daily/2026-11-26", talon.StateRunning)
	if got := getRun(t, s, r.ID); got.Progress != nil {
		t.Fatalf("new run has progress %+v", got.Progress)
	}
	tests := []struct {
		name string
		give talon.Progress
	}{
		{name: "percent", give: talon.Progress{Percent: ptr(40.5), Updated: stored(t0)}},
		{name: "duration", give: talon.Progress{Expected: talon.Duration(time.Hour), Elapsed: talon.Duration(20 * time.Minute), Message: "loading"}},
		{name: "items replace", give: talon.Progress{Items: []talon.ProgressItem{{Name: "eu", State: "succeeded"}, {Name: "us", State: "running"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetProgress(t.Context(), r.ID, tt.give); err != nil {
				t.Fatal(err)
			}
			got := getRun(t, s, r.ID).Progress
			if got == nil || !reflect.DeepEqual(*got, tt.give) {
				t.Fatalf("progress = %+v, want %+v", got, tt.give)
			}
			list, err := s.ListRuns(t.Context(), store.RunFilter{IDs: []int64{r.ID}})
			if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0].Progress, got) {
				t.Fatalf("ListRuns progress = %v, %v", list, err)
			}
		})
	}
}

// testReportAfterEnd: a run reports progress and artifacts until it ends
// (blocked and ready too, since a process may print before its start is
// recorded); once it is succeeded, failed or skipped, both are refused
// with ErrConflict and nothing changes.
func testReportAfterEnd(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	for _, state := range talon.States {
		t.Run(string(state), func(t *testing.T) {
			r := newRun(t, s, "j-"+string(state), "daily/2026-11-26")
			for _, next := range append([]talon.State{talon.StateBlocked}, pathTo(state)...) {
				if next != talon.StateBlocked {
					r = move(t, s, r.ID, r.State, next)
				}
				if next.Terminal() {
					break
				}
				if err := s.SetProgress(ctx, r.ID, talon.Progress{Percent: ptr(10.0)}); err != nil {
					t.Fatalf("SetProgress on a %s run: %v", next, err)
				}
				if _, err := s.AddArtifact(ctx, r.ID, "s3://"+string(next), "", t0); err != nil {
					t.Fatalf("AddArtifact on a %s run: %v", next, err)
				}
			}
			if !state.Terminal() {
				return
			}
			before := getRun(t, s, r.ID)
			if err := s.SetProgress(ctx, r.ID, talon.Progress{Percent: ptr(60.0)}); !errors.Is(err, store.ErrConflict) {
				t.Errorf("SetProgress on a %s run: %v, want ErrConflict", state, err)
			}
			if _, err := s.AddArtifact(ctx, r.ID, "s3://after", "", t0); !errors.Is(err, store.ErrConflict) {
				t.Errorf("AddArtifact on a %s run: %v, want ErrConflict", state, err)
			}
			if got := getRun(t, s, r.ID); !reflect.DeepEqual(got, before) {
				t.Errorf("run after refused reports = %+v, want it unchanged: %+v", got, before)
			}
		})
	}
}

func testArtifacts(t *testing.T, open OpenFunc) {
	s := open(t)
	r := runIn(t, s, "j", "daily/2026-11-26", talon.StateRunning)
	other := runIn(t, s, "j", "daily/2026-11-26", talon.StateRunning)
	adds := []struct{ url, name string }{{"s3://bucket/2026-11-26/a.csv", "report"}, {"s3://bucket/2026-11-26/b.csv", ""}}
	var want []talon.Artifact
	for i, ad := range adds {
		a, err := s.AddArtifact(t.Context(), r.ID, ad.url, ad.name, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		w := talon.Artifact{ID: a.ID, RunID: r.ID, Job: "j", Period: "daily/2026-11-26", URL: ad.url, Name: ad.name, Created: stored(t0.Add(time.Duration(i) * time.Second))}
		if a != w {
			t.Errorf("AddArtifact = %+v, want %+v", a, w)
		}
		want = append(want, w)
	}
	if _, err := s.AddArtifact(t.Context(), other.ID, "s3://other", "", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddArtifact(t.Context(), r.ID, "", "", t0); err == nil {
		t.Errorf("AddArtifact accepted an empty URL")
	}
	got := getRun(t, s, r.ID).Artifacts
	if !slices.Equal(got, want) {
		t.Errorf("GetRun artifacts = %+v, want %+v", got, want)
	}
	bare := runIn(t, s, "j", "daily/2026-11-27", talon.StateBlocked)
	list, err := s.ListRuns(t.Context(), store.RunFilter{IDs: []int64{r.ID, other.ID, bare.ID}, WithArtifacts: true})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int64]int{}
	for _, lr := range list {
		if lr.Artifacts == nil {
			t.Errorf("ListRuns WithArtifacts: run %d artifacts nil, want a list", lr.ID)
		}
		counts[lr.ID] = len(lr.Artifacts)
		if lr.ID == r.ID && !slices.Equal(lr.Artifacts, want) {
			t.Errorf("ListRuns artifacts = %+v, want %+v", lr.Artifacts, want)
		}
	}
	if counts[r.ID] != 2 || counts[other.ID] != 1 || counts[bare.ID] != 0 {
		t.Errorf("ListRuns artifact counts = %v, want 2, 1 and 0", counts)
	}
}

func testListRuns(t *testing.T, open OpenFunc) {
	s := open(t)
	a1 := runIn(t, s, "a", "daily/2026-11-25", talon.StateSucceeded)
	a2 := runIn(t, s, "a", "daily/2026-11-26", talon.StateRunning)
	b1 := runIn(t, s, "b", "daily/2026-11-26", talon.StateBlocked)
	a3 := runIn(t, s, "a", "daily/2026-11-26", talon.StateFailed)
	// The newest run of a is in its older period (a backfill): a job's
	// runs are ordered by id across its periods.
	a4 := runIn(t, s, "a", "daily/2026-11-25", talon.StateSucceeded)
	tests := []struct {
		name string
		f    store.RunFilter
		want []int64
	}{
		{name: "all newest first", f: store.RunFilter{}, want: []int64{a4.ID, a3.ID, b1.ID, a2.ID, a1.ID}},
		{name: "job", f: store.RunFilter{Job: "a"}, want: []int64{a4.ID, a3.ID, a2.ID, a1.ID}},
		{name: "job limit", f: store.RunFilter{Job: "a", Limit: 2}, want: []int64{a4.ID, a3.ID}},
		{name: "job next page", f: store.RunFilter{Job: "a", BeforeID: a3.ID, Limit: 2}, want: []int64{a2.ID, a1.ID}},
		{name: "job finished", f: store.RunFilter{Job: "a", States: []talon.State{talon.StateSucceeded, talon.StateFailed}, Limit: 5},
			want: []int64{a4.ID, a3.ID, a1.ID}},
		{name: "period", f: store.RunFilter{Period: "daily/2026-11-26"}, want: []int64{a3.ID, b1.ID, a2.ID}},
		{name: "job and period", f: store.RunFilter{Job: "a", Period: "daily/2026-11-26"}, want: []int64{a3.ID, a2.ID}},
		{name: "states", f: store.RunFilter{States: []talon.State{talon.StateBlocked, talon.StateRunning}}, want: []int64{b1.ID, a2.ID}},
		{name: "ids", f: store.RunFilter{IDs: []int64{a1.ID, b1.ID, 999999}}, want: []int64{b1.ID, a1.ID}},
		{name: "empty ids match nothing", f: store.RunFilter{IDs: []int64{}}, want: nil},
		{name: "limit", f: store.RunFilter{Limit: 2}, want: []int64{a4.ID, a3.ID}},
		{name: "next page", f: store.RunFilter{BeforeID: b1.ID, Limit: 2}, want: []int64{a2.ID, a1.ID}},
		{name: "nothing", f: store.RunFilter{Job: "zzz"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := s.ListRuns(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range runs {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	runs, err := s.ListRuns(t.Context(), store.RunFilter{IDs: []int64{a2.ID}})
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, "ListRuns", runs[0], getRun(t, s, a2.ID))
}

func testSummaries(t *testing.T, open OpenFunc) {
	s := open(t)
	runIn(t, s, "a", "daily/2026-11-26", talon.StateSucceeded)
	runIn(t, s, "a", "daily/2026-11-26", talon.StateFailed)
	runIn(t, s, "a", "daily/2026-11-26", talon.StateFailed)
	runIn(t, s, "a", "daily/2026-11-25", talon.StateRunning)
	runIn(t, s, "b", "daily/2026-11-26", talon.StateBlocked)
	keys := []store.JobPeriod{
		{Job: "a", Period: "daily/2026-11-26"},
		{Job: "a", Period: "daily/2026-11-25"},
		{Job: "b", Period: "daily/2026-11-26"},
		{Job: "b", Period: "daily/2026-11-25"},
		{Job: "a", Period: "daily/2026-11-26"}, // twice: counted once
	}
	// Thousands of keys, as the engine asks at a period rollover.
	for i := range 5000 {
		keys = append(keys, store.JobPeriod{Job: fmt.Sprintf("job%d", i), Period: "daily/2026-11-26"})
	}
	got, err := s.Summaries(t.Context(), keys)
	if err != nil {
		t.Fatal(err)
	}
	want := map[store.JobPeriod]store.Summary{
		{Job: "a", Period: "daily/2026-11-26"}: {talon.StateSucceeded: 1, talon.StateFailed: 2},
		{Job: "a", Period: "daily/2026-11-25"}: {talon.StateRunning: 1},
		{Job: "b", Period: "daily/2026-11-26"}: {talon.StateBlocked: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summaries = %v, want %v", got, want)
	}
	if got, err := s.Summaries(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("Summaries(nil) = %v, %v", got, err)
	}
}

func testActiveCounts(t *testing.T, open OpenFunc) {
	s := open(t)
	runIn(t, s, "a", "daily/2026-11-26", talon.StateRunning)
	runIn(t, s, "a", "daily/2026-11-25", talon.StateReady)
	runIn(t, s, "a", "daily/2026-11-24", talon.StateBlocked)
	runIn(t, s, "a", "daily/2026-11-23", talon.StateSucceeded)
	runIn(t, s, "b", "daily/2026-11-26", talon.StateSucceeded)
	runIn(t, s, "c", "daily/2026-11-26", talon.StateBlocked)
	jobs := []string{"a", "b", "c", "a"}
	for i := range 3000 {
		jobs = append(jobs, fmt.Sprintf("job%d", i))
	}
	got, err := s.ActiveCounts(t.Context(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	// Only ready and running runs count: finished and blocked ones are
	// not what max_running limits.
	want := map[string]int{"a": 2}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
}

func testListPeriods(t *testing.T, open OpenFunc) {
	s := open(t)
	runIn(t, s, "a", "daily/2026-11-25", talon.StateSucceeded)
	runIn(t, s, "a", "daily/2026-11-26", talon.StateFailed)
	a26 := runIn(t, s, "a", "daily/2026-11-26", talon.StateRunning)
	b26 := runIn(t, s, "b", "daily/2026-11-26", talon.StateBlocked)
	b24 := runIn(t, s, "b", "daily/2026-11-24", talon.StateSkipped)
	a25 := getRun(t, s, a26.ID-2)
	tests := []struct {
		name string
		f    store.PeriodFilter
		want []store.PeriodRow
	}{
		{name: "all", f: store.PeriodFilter{}, want: []store.PeriodRow{
			{Period: "daily/2026-11-26", Job: "a", Counts: store.Summary{talon.StateFailed: 1, talon.StateRunning: 1}, LatestRun: a26.ID, Latest: talon.StateRunning},
			{Period: "daily/2026-11-26", Job: "b", Counts: store.Summary{talon.StateBlocked: 1}, LatestRun: b26.ID, Latest: talon.StateBlocked},
			{Period: "daily/2026-11-25", Job: "a", Counts: store.Summary{talon.StateSucceeded: 1}, LatestRun: a25.ID, Latest: talon.StateSucceeded},
			{Period: "daily/2026-11-24", Job: "b", Counts: store.Summary{talon.StateSkipped: 1}, LatestRun: b24.ID, Latest: talon.StateSkipped},
		}},
		{name: "limit counts periods", f: store.PeriodFilter{Limit: 1}, want: []store.PeriodRow{
			{Period: "daily/2026-11-26", Job: "a", Counts: store.Summary{talon.StateFailed: 1, talon.StateRunning: 1}, LatestRun: a26.ID, Latest: talon.StateRunning},
			{Period: "daily/2026-11-26", Job: "b", Counts: store.Summary{talon.StateBlocked: 1}, LatestRun: b26.ID, Latest: talon.StateBlocked},
		}},
		{name: "job", f: store.PeriodFilter{Job: "b"}, want: []store.PeriodRow{
			{Period: "daily/2026-11-26", Job: "b", Counts: store.Summary{talon.StateBlocked: 1}, LatestRun: b26.ID, Latest: talon.StateBlocked},
			{Period: "daily/2026-11-24", Job: "b", Counts: store.Summary{talon.StateSkipped: 1}, LatestRun: b24.ID, Latest: talon.StateSkipped},
		}},
		{name: "job and limit", f: store.PeriodFilter{Job: "a", Limit: 1}, want: []store.PeriodRow{
			{Period: "daily/2026-11-26", Job: "a", Counts: store.Summary{talon.StateFailed: 1, talon.StateRunning: 1}, LatestRun: a26.ID, Latest: talon.StateRunning},
		}},
		{name: "before (next page)", f: store.PeriodFilter{Before: "daily/2026-11-26", Limit: 1}, want: []store.PeriodRow{
			{Period: "daily/2026-11-25", Job: "a", Counts: store.Summary{talon.StateSucceeded: 1}, LatestRun: a25.ID, Latest: talon.StateSucceeded},
		}},
		{name: "job and before", f: store.PeriodFilter{Job: "b", Before: "daily/2026-11-26"}, want: []store.PeriodRow{
			{Period: "daily/2026-11-24", Job: "b", Counts: store.Summary{talon.StateSkipped: 1}, LatestRun: b24.ID, Latest: talon.StateSkipped},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListPeriods(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ListPeriods = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func testCursors(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	ctx := t.Context()
	if _, ok, err := handles[0].Cursor(ctx, "j", "cron"); err != nil || ok {
		t.Fatalf("Cursor of a new trigger = %v, %v; want none", ok, err)
	}
	steps := []struct {
		name    string
		handle  int
		updates []store.CursorUpdate
		want    map[string]time.Time // trigger → cursor of job j
	}{
		{name: "first", updates: []store.CursorUpdate{{Job: "j", Trigger: "cron", Fired: t0}, {Job: "j", Trigger: "hourly", Fired: t0}},
			want: map[string]time.Time{"cron": t0, "hourly": t0}},
		{name: "forward", handle: 1, updates: []store.CursorUpdate{{Job: "j", Trigger: "cron", Fired: t0.Add(time.Hour)}},
			want: map[string]time.Time{"cron": t0.Add(time.Hour), "hourly": t0}},
		{name: "never back", updates: []store.CursorUpdate{{Job: "j", Trigger: "cron", Fired: t0.Add(time.Minute)}},
			want: map[string]time.Time{"cron": t0.Add(time.Hour), "hourly": t0}},
		{name: "same batch back and forth", handle: 1, updates: []store.CursorUpdate{
			{Job: "j", Trigger: "hourly", Fired: t0.Add(2 * time.Hour)}, {Job: "j", Trigger: "hourly", Fired: t0.Add(time.Hour)}},
			want: map[string]time.Time{"cron": t0.Add(time.Hour), "hourly": t0.Add(2 * time.Hour)}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := handles[st.handle].AdvanceCursors(ctx, st.updates); err != nil {
				t.Fatal(err)
			}
			for trig, want := range st.want {
				got, ok, err := handles[1-st.handle].Cursor(ctx, "j", trig)
				if err != nil || !ok || !got.Equal(stored(want)) || got.Location() != time.UTC {
					t.Errorf("cursor %s = %v, %v, %v; want %v", trig, got, ok, err, stored(want))
				}
			}
		})
	}
	if _, ok, _ := handles[0].Cursor(ctx, "other", "cron"); ok {
		t.Errorf("cursor of another job leaked")
	}
}

func testHeartbeat(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	before := time.Now().Add(-time.Minute) // the database clock may differ a little
	started := t0
	db1, err := s.Heartbeat(ctx, store.Instance{ID: "sched-1", Host: "h1", PID: 42, Started: started})
	if err != nil {
		t.Fatal(err)
	}
	if db1.Before(before) || db1.After(time.Now().Add(time.Minute)) || db1.Location() != time.UTC {
		t.Errorf("database clock %v is far from now", db1)
	}
	if _, err := s.Heartbeat(ctx, store.Instance{ID: "sched-2", Host: "h2", PID: 7}); err != nil {
		t.Fatal(err)
	}
	db2, err := s.Heartbeat(ctx, store.Instance{ID: "sched-1", Host: "h1", PID: 42, Started: started, LogDir: "/var/lib/talon/logs"})
	if err != nil {
		t.Fatal(err)
	}
	if db2.Before(db1) {
		t.Errorf("database clock went back: %v then %v", db1, db2)
	}
	ins, err := s.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 {
		t.Fatalf("instances = %+v, want 2", ins)
	}
	got := ins[0]
	if got.ID != "sched-1" || got.Host != "h1" || got.PID != 42 || !got.Started.Equal(stored(started)) || !got.Heartbeat.Equal(db2) || got.LogDir != "/var/lib/talon/logs" {
		t.Errorf("instance = %+v, want sched-1 h1 42 started %v heartbeat %v logs /var/lib/talon/logs", got, stored(started), db2)
	}
	if _, err := s.Heartbeat(ctx, store.Instance{}); err == nil {
		t.Errorf("Heartbeat accepted an instance without an id")
	}
}

// testPing: a store that works answers its ping; a closed one is
// unavailable, which is what health checks report.
func testPing(t *testing.T, open OpenFunc) {
	s := open(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of a working store: %v", err)
	}
	gone := open(t)
	gone.Close()
	if err := gone.Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping of a closed store: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of the other handle: %v", err)
	}
}

// testListArtifacts: artifacts by job, period and run, newest first, in
// pages.
func testListArtifacts(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := t.Context()
	a26 := runIn(t, s, "a", "daily/2026-11-26", talon.StateRunning)
	b26 := runIn(t, s, "b", "daily/2026-11-26", talon.StateRunning)
	a27 := runIn(t, s, "a", "daily/2026-11-27", talon.StateRunning)
	env := runIn(t, s, "a", "prod:daily/2026-11-26", talon.StateRunning)
	add := func(r talon.Run, u string) talon.Artifact {
		t.Helper()
		a, err := s.AddArtifact(ctx, r.ID, u, "", t0)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	x1 := add(a26, "s3://x/1")
	x2 := add(b26, "s3://x/2")
	x3 := add(a27, "s3://x/3")
	x4 := add(a26, "s3://x/4")
	x5 := add(env, "s3://x/5")
	ids := func(as []talon.Artifact) []int64 {
		out := []int64{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    store.ArtifactFilter
		want []talon.Artifact
	}{
		{name: "all", f: store.ArtifactFilter{}, want: []talon.Artifact{x5, x4, x3, x2, x1}},
		{name: "period", f: store.ArtifactFilter{Period: "daily/2026-11-26"}, want: []talon.Artifact{x4, x2, x1}},
		{name: "period with environment", f: store.ArtifactFilter{Period: "prod:daily/2026-11-26"}, want: []talon.Artifact{x5}},
		{name: "job and period", f: store.ArtifactFilter{Job: "a", Period: "daily/2026-11-26"}, want: []talon.Artifact{x4, x1}},
		{name: "job", f: store.ArtifactFilter{Job: "b"}, want: []talon.Artifact{x2}},
		{name: "run", f: store.ArtifactFilter{RunID: a26.ID}, want: []talon.Artifact{x4, x1}},
		{name: "page", f: store.ArtifactFilter{Limit: 2}, want: []talon.Artifact{x5, x4}},
		{name: "next page", f: store.ArtifactFilter{BeforeID: x4.ID, Limit: 2}, want: []talon.Artifact{x3, x2}},
		{name: "none", f: store.ArtifactFilter{Period: "daily/2026-11-28"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListArtifacts(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), ids(tt.want)) {
				t.Fatalf("ListArtifacts(%+v) = ids %v, want %v", tt.f, ids(got), ids(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("artifact %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// testSecret: a secret is made once and every handle reads the same
// value, also when several make it at once, as schedulers starting
// together would.
func testSecret(t *testing.T, open OpenFunc) {
	handles := []store.Store{open(t), open(t)}
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	parallel(t, n, func(i int) {
		got[i], errs[i] = handles[i%2].Secret(t.Context(), "run-token")
	})
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Secret #%d: %v", i, errs[i])
		}
		if len(got[i]) != store.SecretSize {
			t.Fatalf("Secret #%d has %d bytes, want %d", i, len(got[i]), store.SecretSize)
		}
		if !slices.Equal(got[i], got[0]) {
			t.Fatalf("Secret #%d = %x, want the same as #0 (%x)", i, got[i], got[0])
		}
	}
	again, err := open(t).Secret(t.Context(), "run-token")
	if err != nil || !slices.Equal(again, got[0]) {
		t.Fatalf("Secret on a later handle = %x, %v; want %x", again, err, got[0])
	}
	other, err := handles[0].Secret(t.Context(), "other")
	if err != nil || slices.Equal(other, got[0]) {
		t.Fatalf("Secret of another name = %x, %v; want a different value", other, err)
	}
}

// testSummariesFollowRuns: the counts Summaries answers (kept as counters
// by the stores) agree with the runs themselves after everything that
// creates or moves runs — idempotent re-creation, runs created finished,
// refused and fenced transitions, batches moving one run twice, marks of
// finished runs, and two handles writing at once.
func testSummariesFollowRuns(t *testing.T, open OpenFunc) {
	s, s2 := open(t), open(t)
	const period = "daily/2026-11-26"
	fire := t0.Add(-time.Hour)
	mk := func(job string, i int) store.CreateRun {
		return store.CreateRun{Job: job, Period: period, Trigger: "t", FireTime: fire.Add(time.Duration(i) * time.Minute), Reason: "created", Now: t0}
	}
	// Created twice: counted once.
	create(t, s, mk("a", 1), mk("a", 2), mk("a", 1))
	create(t, s2, mk("a", 2), mk("a", 3))
	// Created finished.
	create(t, s, store.CreateRun{Job: "a", Period: period, Trigger: "api", State: talon.StateSkipped, Reason: "paused", Now: t0})
	runs, err := s.ListRuns(t.Context(), store.RunFilter{Job: "a", States: []talon.State{talon.StateBlocked}})
	if err != nil || len(runs) != 3 {
		t.Fatalf("blocked runs = %d, %v; want 3", len(runs), err)
	}
	a1, a2, a3 := runs[2], runs[1], runs[0]
	// One batch moves a1 twice and fails a2; the refused item counts nothing.
	res, err := s.Transition(t.Context(), []store.Transition{
		{RunID: a1.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady, Now: t0},
		{RunID: a1.ID, From: []talon.State{talon.StateReady}, To: talon.StateRunning, Now: t0},
		{RunID: a2.ID, From: []talon.State{talon.StateRunning}, To: talon.StateFailed, Now: t0}, // conflict
		{RunID: a2.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateFailed, Now: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[2].Err == nil {
		t.Fatalf("a conflicting transition was applied: %+v", res[2])
	}
	move(t, s2, a1.ID, talon.StateRunning, talon.StateSucceeded)
	// A fenced run stays blocked and counts as blocked.
	fenced := transition(t, s, store.Transition{RunID: a3.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateReady,
		Fence: &store.Fence{OncePerPeriod: true}, Now: t0})
	if fenced.Err == nil {
		t.Fatalf("once_per_period let a second run in: %+v", fenced.Run)
	}
	// A mark changes a finished run's outcome.
	if r := transition(t, s, store.Transition{RunID: a2.ID, From: []talon.State{talon.StateFailed}, To: talon.StateSucceeded,
		Mark: true, Reason: "marked", Now: t0}); r.Err != nil {
		t.Fatalf("mark: %v", r.Err)
	}
	// Two handles moving runs of one period at once.
	var ids []int64
	for i := range 10 {
		ids = append(ids, create(t, s, mk("b", i))[0].Run.ID)
	}
	parallel(t, len(ids), func(i int) {
		st := s
		if i%2 == 1 {
			st = s2
		}
		to := talon.StateFailed
		if i%3 == 0 {
			to = talon.StateSkipped
		}
		_, _ = st.Transition(t.Context(), []store.Transition{{RunID: ids[i], From: []talon.State{talon.StateBlocked}, To: to, Now: t0}})
	})

	for _, job := range []string{"a", "b"} {
		k := store.JobPeriod{Job: job, Period: period}
		got, err := s2.Summaries(t.Context(), []store.JobPeriod{k})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.ListRuns(t.Context(), store.RunFilter{Job: job, Period: period})
		if err != nil {
			t.Fatal(err)
		}
		want := store.Summary{}
		for _, r := range all {
			want[r.State]++
		}
		if !reflect.DeepEqual(got[k], want) {
			t.Errorf("Summaries(%s) = %v, the runs say %v", job, got[k], want)
		}
	}
}
