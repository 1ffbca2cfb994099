package api_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

// A job that prints its secret (masked in every log), a line, waits
// for the test to create the file "go", prints another line and a line
// without a newline, and ends.
const crossSchedule = `
jobs:
  talk:
    period: daily
    poll: 1h
    dir: %DIR%
    env:
      PW: {env: CROSS_SECRET}
    command: [sh, -c, 'echo "pw=$PW"; echo first; while [ ! -e go ]; do sleep 0.02; done; echo second; printf "last, no newline"']
`

const crossSecret = "s3cr3t-v@lue"

// crossScheduler is one scheduler (engine loop, local executor, event
// feed, API server) on a store shared with others, with a log directory
// of its own: what one scheduler wrote to its files, another cannot see.
type crossScheduler struct {
	engine *engine.Engine
	client *api.Client
	logDir string
}

func startCross(t testing.TB, st store.Store, dir string) *crossScheduler {
	return startCrossWith(t, st, dir, crossSchedule)
}

func startCrossWith(t testing.TB, st store.Store, dir, yaml string) *crossScheduler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "schedule.yaml", []byte(strings.ReplaceAll(yaml, "%DIR%", dir)))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	logDir := t.TempDir()
	e, err := engine.New(engine.Config{
		Store: st, Schedule: sched, Logger: logger, LogDir: logDir,
		Executors: map[string]executor.Executor{"local": local.New(logger)},
		LookupEnv: func(k string) (string, bool) {
			if k == "CROSS_SECRET" {
				return crossSecret, true
			}
			return "", false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	loopDone := make(chan error, 1)
	go func() { loopDone <- e.Loop(ctx) }()
	hub := feed.New(st, logger, feed.Options{})
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(ctx)
	}()
	srv := api.NewHTTPServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger, api.WithFeed(hub)), api.HTTPLimits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		select {
		case <-loopDone:
		case <-time.After(15 * time.Second):
			t.Errorf("loop did not stop within 15s")
		}
		<-hubDone
	})
	return &crossScheduler{engine: e, client: api.NewClient("http://"+ln.Addr().String(), nil), logDir: logDir}
}

// TestLogsAcrossSchedulers: two schedulers share one state store (one
// PostgreSQL database; one SQLite file), each with its own log
// directory. A run started by one is read, and followed until it ends,
// through the other's API: the output reaches it through the store,
// lines while the run is still going, with the secret masked.
func TestLogsAcrossSchedulers(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T, dir string) (store.Store, store.Store){
		"sqlite": func(t *testing.T, dir string) (store.Store, store.Store) {
			path := filepath.Join(dir, "state.db")
			return openCrossSQLite(t, path), openCrossSQLite(t, path)
		},
		"postgres": func(t *testing.T, _ string) (store.Store, store.Store) {
			u := talontest.PostgresURL(t)
			return openCrossPG(t, u), openCrossPG(t, u)
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			stA, stB := open(t, dir)
			a, b := startCross(t, stA, dir), startCross(t, stB, dir)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()

			run, _, err := a.client.Trigger(ctx, "talk", talon.TriggerRequest{})
			if err != nil {
				t.Fatal(err)
			}
			// Both loop, so either may start it: both follow it, and
			// one of them follows another's run.
			var streams []*bufio.Reader
			for _, s := range []*crossScheduler{a, b} {
				rc, err := s.client.FollowLogs(ctx, run.ID)
				if err != nil {
					t.Fatalf("follow: %v", err)
				}
				defer rc.Close()
				streams = append(streams, bufio.NewReader(rc))
			}
			for i, br := range streams {
				for _, want := range []string{"pw=***\n", "first\n"} {
					line, err := br.ReadString('\n')
					if err != nil || line != want {
						t.Fatalf("stream %d: followed line = %q, %v; want %q", i, line, err, want)
					}
				}
			}
			d, err := b.client.Run(ctx, run.ID)
			if err != nil || d.State != talon.StateRunning {
				t.Fatalf("run %d while its first lines streamed: %s, %v; want running", run.ID, d.State, err)
			}
			owner, reader := a, b
			if d.Owner == b.engine.InstanceID() {
				owner, reader = b, a
			} else if d.Owner != a.engine.InstanceID() {
				t.Fatalf("run owned by %q, neither scheduler", d.Owner)
			}
			// The reader has no file of the run: what it shows came
			// through the store.
			if _, err := os.Stat(filepath.Join(reader.logDir, "talk")); !os.IsNotExist(err) {
				t.Fatalf("the reader's log directory has the job's logs (%v): the test proves nothing", err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			for i, br := range streams {
				rest, err := io.ReadAll(br)
				if err != nil || string(rest) != "second\nlast, no newline" {
					t.Fatalf("stream %d: rest of the followed log = %q, %v", i, rest, err)
				}
			}
			d, err = reader.client.Run(ctx, run.ID)
			if err != nil || d.State != talon.StateSucceeded {
				t.Fatalf("run %d when the follow ended: %s, %v; want succeeded", run.ID, d.State, err)
			}

			want := "pw=***\nfirst\nsecond\nlast, no newline"
			for name, s := range map[string]*crossScheduler{"owner": owner, "reader": reader} {
				for how, read := range map[string]func(context.Context, int64) (io.ReadCloser, error){
					"plain": s.client.Logs, "follow": s.client.FollowLogs,
				} {
					rc, err := read(ctx, run.ID)
					if err != nil {
						t.Fatalf("%s, %s: %v", name, how, err)
					}
					all, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || string(all) != want {
						t.Errorf("%s, %s: log = %q, %v; want %q", name, how, all, err, want)
					}
				}
			}
			// The owner's file has the same, masked too.
			file, err := os.ReadFile(filepath.Join(owner.logDir, "talk", strconv.FormatInt(run.ID, 10)+".log"))
			if err != nil || string(file) != want {
				t.Errorf("owner's log file = %q, %v; want %q", file, err, want)
			}
			stored, err := stA.ReadLog(ctx, run.ID, 0, 1<<20)
			if err != nil || strings.Contains(string(stored), crossSecret) {
				t.Errorf("stored log %q (%v) holds the secret", stored, err)
			}
		})
	}
}

func openCrossSQLite(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openCrossPG(t testing.TB, u string) store.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A job that prints the time (ns since the epoch) every 20 ms, 200 times.
const stampSchedule = `
jobs:
  stamps:
    period: daily
    poll: 1h
    command: [sh, -c, 'i=0; while [ $i -lt 200 ]; do date +%s%N; sleep 0.02; i=$((i+1)); done']
`

// BenchmarkFollowAcrossSchedulers measures how late a line reaches a
// follower through another scheduler's API (one that did not run the
// run): from the moment the job printed it to the moment the follower
// reads it, p50 and p99 over 200 lines a run. Both schedulers loop; the
// follower follows through the one that does not own the run.
//
//	go test -run '^$' -bench FollowAcrossSchedulers -benchtime 3x ./internal/api/
func BenchmarkFollowAcrossSchedulers(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			var stA, stB store.Store
			if name == "sqlite" {
				path := filepath.Join(dir, "state.db")
				stA, stB = openCrossSQLite(b, path), openCrossSQLite(b, path)
			} else {
				u := talontest.PostgresURL(b)
				stA, stB = openCrossPG(b, u), openCrossPG(b, u)
			}
			a, bb := startCrossWith(b, stA, dir, stampSchedule), startCrossWith(b, stB, dir, stampSchedule)
			ctx := b.Context()
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				run, _, err := a.client.Trigger(ctx, "stamps", talon.TriggerRequest{Key: strconv.Itoa(i)})
				if err != nil {
					b.Fatal(err)
				}
				// Follow through both; measure through the non-owner.
				rcs := map[*crossScheduler]io.ReadCloser{}
				for _, s := range []*crossScheduler{a, bb} {
					rc, err := s.client.FollowLogs(ctx, run.ID)
					if err != nil {
						b.Fatal(err)
					}
					rcs[s] = rc
				}
				br := bufio.NewReader(rcs[a])
				first, err := br.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				d, err := a.client.Run(ctx, run.ID)
				if err != nil {
					b.Fatal(err)
				}
				// The follower reads through the scheduler that does not
				// own the run.
				reader, other := bb, a
				if d.Owner == bb.engine.InstanceID() {
					reader, other = a, bb
				} else {
					br = bufio.NewReader(rcs[bb])
					if first, err = br.ReadString('\n'); err != nil {
						b.Fatal(err)
					}
				}
				go io.Copy(io.Discard, rcs[other])
				_ = reader
				n := len(lat)
				for line := first; ; {
					now := time.Now().UnixNano()
					ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
					if err != nil {
						b.Fatalf("line %q: %v", line, err)
					}
					lat = append(lat, time.Duration(now-ns))
					if line, err = br.ReadString('\n'); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				b.Logf("run %d: %d lines through the scheduler that did not run it", run.ID, len(lat)-n)
				for _, rc := range rcs {
					rc.Close()
				}
			}
			b.ReportMetric(float64(talontest.Percentile(lat, 50))/1e6, "ms-p50")
			b.ReportMetric(float64(talontest.Percentile(lat, 99))/1e6, "ms-p99")
			b.ReportMetric(float64(len(lat))/float64(b.N), "lines/run")
		})
	}
}
