package api_test

import (
	"context"
	"fmt"
	"github.com/talonhq/talon/internal/talontest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/view"
)

// BenchmarkLiveAPI measures the API under load while the scheduler works:
// a real server on loopback (engine, SQLite, the event feed) with 1,000
// jobs, 50 event-stream subscribers, and b.N requests paced at 200 per
// second, a quarter of them writes (triggering a run of one of the jobs,
// which the scheduler then starts and finishes), the rest reads (a page
// of runs, one run, the jobs, the periods). Run it with a bounded count:
//
//	go test -run '^$' -bench LiveAPI -benchtime 2000x ./internal/api/
//
// It reports the latency of reads and writes (p50, p99), the scheduling
// lag of the triggered runs (created → started), the delay of event
// delivery to the subscribers, and how many subscribers were dropped.
func BenchmarkLiveAPI(b *testing.B) {
	const (
		jobs        = 1000
		subscribers = 50
		rate        = 200 // requests per second
		workers     = 32
	)
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range jobs {
		fmt.Fprintf(&sb, "  j%d:\n    period: daily\n    poll: 1m\n    executor: inprocess\n    command: [noop]\n", i)
	}
	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "talon.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := feed.New(st, logger, feed.Options{})
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(ctx)
	}()
	e, err := engine.New(engine.Config{
		Store: st, Schedule: sched, Logger: logger, LogDir: b.TempDir(), Feed: hub,
		Executors: map[string]executor.Executor{"inprocess": inprocess.New()},
	})
	if err != nil {
		b.Fatal(err)
	}
	loopDone := make(chan error, 1)
	go func() { loopDone <- e.Loop(ctx) }()
	srv := api.NewHTTPServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger, api.WithFeed(hub)), api.HTTPLimits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		cancel()
		<-loopDone
		<-hubDone
	}()
	base := "http://" + ln.Addr().String()
	client := api.NewClient(base, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}})

	// The subscribers: each counts its events and how late they came.
	var (
		subMu      sync.Mutex
		delays     []time.Duration
		received   atomic.Int64
		reconnects atomic.Int64
		subsDone   sync.WaitGroup
	)
	sctx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	for range subscribers {
		s, err := client.Events(sctx, api.EventQuery{})
		if err != nil {
			b.Fatal(err)
		}
		s.OnReconnect = func(error) { reconnects.Add(1) }
		subsDone.Add(1)
		go func() {
			defer subsDone.Done()
			defer s.Close()
			var mine []time.Duration
			for {
				ev, err := s.Next()
				if err != nil {
					subMu.Lock()
					delays = append(delays, mine...)
					subMu.Unlock()
					return
				}
				received.Add(1)
				mine = append(mine, time.Since(ev.Time))
			}
		}()
	}

	var (
		latMu          sync.Mutex
		reads, writes  []time.Duration
		failed         atomic.Int64
		lastRun        atomic.Int64
		work           = make(chan int)
		workersDone    sync.WaitGroup
		triggerRequest = talon.TriggerRequest{}
	)
	do := func(i int) {
		began := time.Now()
		var err error
		write := i%4 == 0
		switch i % 4 {
		case 0:
			var r talon.Run
			r, _, err = client.Trigger(ctx, "j"+strconv.Itoa(i/4%jobs), triggerRequest)
			if err == nil {
				lastRun.Store(r.ID)
			}
		case 1:
			_, err = client.Runs(ctx, view.RunFilter{Limit: 100})
		case 2:
			if id := lastRun.Load(); id > 0 {
				_, err = client.Run(ctx, id)
			} else {
				_, err = client.Jobs(ctx)
			}
		case 3:
			_, err = client.Periods(ctx, view.PeriodFilter{})
		}
		d := time.Since(began)
		if err != nil {
			failed.Add(1)
			return
		}
		latMu.Lock()
		if write {
			writes = append(writes, d)
		} else {
			reads = append(reads, d)
		}
		latMu.Unlock()
	}
	for range workers {
		workersDone.Add(1)
		go func() {
			defer workersDone.Done()
			for i := range work {
				do(i)
			}
		}()
	}

	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	for i := range b.N {
		<-tick.C
		work <- i
	}
	tick.Stop()
	close(work)
	workersDone.Wait()
	b.StopTimer()

	// Every triggered run ends; then the scheduling lag of each.
	deadline := time.Now().Add(2 * time.Minute)
	var runs []talon.Run
	for {
		live, err := st.ListRuns(ctx, store.RunFilter{States: []talon.State{talon.StateBlocked, talon.StateReady, talon.StateRunning}, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(live) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("runs still live after 2 minutes: %+v", live)
		}
		<-time.After(50 * time.Millisecond) // polling the store, not waiting for the scheduler blindly
	}
	runs, err = st.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for _, r := range runs {
		if r.Started != nil {
			lags = append(lags, r.Started.Sub(r.Created))
		}
	}
	// The subscribers get the last events, then stop.
	want := int64(0)
	if last, err := st.LastEventID(ctx); err == nil {
		want = last
	}
	waitUntil := time.Now().Add(30 * time.Second)
	for received.Load() < want*subscribers && time.Now().Before(waitUntil) {
		<-time.After(20 * time.Millisecond)
	}
	stopSubs()
	subsDone.Wait()

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(talontest.Percentile(reads, 50)), "read-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(reads, 99)), "read-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(writes, 50)), "write-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(writes, 99)), "write-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(lags, 50)), "lag-p50-ms")
	b.ReportMetric(ms(talontest.Percentile(lags, 99)), "lag-p99-ms")
	b.ReportMetric(ms(talontest.Percentile(lags, 100)), "lag-max-ms")
	b.ReportMetric(ms(talontest.Percentile(delays, 99)), "event-p99-ms")
	b.ReportMetric(float64(received.Load())/float64(subscribers), "events/sub")
	b.ReportMetric(float64(reconnects.Load()), "drops")
	b.ReportMetric(float64(failed.Load()), "errors")
	b.ReportMetric(float64(len(runs)), "runs")
}
