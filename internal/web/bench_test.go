package web_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	_ "github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/web"
)

// dashboard is the dashboard of a real store and scheduler (not looping)
// behind the API's server, as serve builds it without auth:.
type dashboard struct {
	st       store.Store
	reads    *query.Service
	dash     *web.Dashboard
	sessions *api.Sessions
	server   *api.Server
}

func newDashboard(tb testing.TB, sched string) *dashboard {
	tb.Helper()
	return newDashboardAuth(tb, sched, nil)
}

// newDashboardAuth is newDashboard with authn's tokens required (nil:
// anonymous access, as on loopback without auth:).
func newDashboardAuth(tb testing.TB, sched string, authn auth.Source) *dashboard {
	tb.Helper()
	ctx := tb.Context()
	logger := slog.New(slog.DiscardHandler)
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "state.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "s.yaml", []byte(sched))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := engine.New(engine.Config{Store: st, Schedule: s, Logger: logger, LogDir: tb.TempDir(),
		Executors: map[string]executor.Executor{"local": local.New(logger)}})
	if err != nil {
		tb.Fatal(err)
	}
	reads := query.New(st, e, nil)
	sessions := api.NewSessions([]byte(strings.Repeat("k", 32)), false)
	authorize := api.AllowAll
	if authn != nil {
		authorize = api.BearerAuth(authn, false, logger)
	}
	d, err := web.New(web.Join(reads, e), sessions, authn, logger)
	if err != nil {
		tb.Fatal(err)
	}
	srv := api.NewServer(api.Join(reads, e), logger, api.WithAuthorizer(authorize), api.WithSessions(sessions), api.WithPages(d))
	return &dashboard{st: st, reads: reads, dash: d, sessions: sessions, server: srv}
}

func (d *dashboard) get(tb testing.TB, target string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequestWithContext(tb.Context(), http.MethodGet, target, nil)
	rec := httptest.NewRecorder()
	d.server.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkGrid500x30 is the grid's server time for 500 jobs by 30 days
// of runs (15,000 runs, 20 of them running with progress) on SQLite: the
// request through the API's server, the grid's read and the template,
// measured as the handler's whole time per page (goal: under 100 ms),
// and, apart, the store's read of the cells alone.
//
//	go test -run '^$' -bench Grid500x30 -benchtime 20x ./internal/web/
func BenchmarkGrid500x30(b *testing.B) {
	d := newDashboard(b, gridSchedule(500))
	seedGrid(b, d.st, 500, 30, 20, time.Now())
	rec := d.get(b, "/?n=30")
	if n := strings.Count(rec.Body.String(), `<td class="s-`) - strings.Count(rec.Body.String(), `<td class="s-none`); n != 15000 {
		b.Fatalf("the grid has %d cells with runs, want 15000", n)
	}
	b.ResetTimer()
	var bytes int
	for b.Loop() {
		bytes = d.get(b, "/?n=30").Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	b.ReportMetric(float64(bytes)/1024, "KiB/page")
	// The part of a page that is the store's read of the cells
	// (ListPeriods of the 30 days), timed alone as many times.
	b.StopTimer()
	start := time.Now()
	before := "daily/" + time.Now().AddDate(0, 0, 1).UTC().Format("2006-01-02")
	for range b.N {
		if _, err := d.st.ListPeriods(b.Context(), store.PeriodFilter{Before: before, Limit: 30}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/store-read")
}
