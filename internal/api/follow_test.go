package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/feed"
	"github.com/talonhq/talon/internal/query"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/sqlite"
)

// followBundle is a real scheduler (engine, SQLite, local executor)
// behind the API's HTTP server with short limits, on a real socket.
type followBundle struct {
	client *api.Client
	srv    *api.HTTPServer
	hub    *feed.Hub
	st     store.Store
	engine *engine.Engine
	logger *slog.Logger
	url    string
	dir    string // the jobs' working directory
}

// A job that prints a line, waits for the test to create the file "go",
// prints another and ends a while later (longer than the write timeout:
// the stream's end must not trip on it). The job polls; the test does
// not sleep.
const talkSchedule = `
jobs:
  talk:
    period: daily
    poll: 1h
    dir: %DIR%
    command: [sh, -c, 'echo first; while [ ! -e go ]; do sleep 0.02; done; echo second; sleep 1.5']
`

func setupFollow(t *testing.T, limits api.HTTPLimits) *followBundle {
	t.Helper()
	return setupFeed(t, limits, feed.Options{})
}

// setupFeed is setupFollow with the event feed's options.
func setupFeed(t *testing.T, limits api.HTTPLimits, opts feed.Options) *followBundle {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "schedule.yaml", []byte(strings.ReplaceAll(talkSchedule, "%DIR%", dir)))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	e, err := engine.New(engine.Config{
		Store: st, Schedule: sched, Logger: logger, LogDir: filepath.Join(dir, "logs"),
		Executors: map[string]executor.Executor{"local": local.New(logger)},
	})
	if err != nil {
		t.Fatal(err)
	}
	loopDone := make(chan error, 1)
	go func() { loopDone <- e.Loop(ctx) }()

	hub := feed.New(st, logger, opts)
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(ctx)
	}()

	srv := api.NewHTTPServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger, api.WithFeed(hub)), limits)
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
		st.Close()
	})
	u := "http://" + ln.Addr().String()
	return &followBundle{client: api.NewClient(u, nil), srv: srv, hub: hub, st: st, engine: e, logger: logger, url: u, dir: dir}
}

// release lets the talk job finish.
func (fb *followBundle) release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(fb.dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFollowLog follows a running run's log past the server's read and
// write timeouts: lines arrive as the run writes them, and the stream
// ends, cleanly, once the run has finished and its log is drained.
func TestFollowLog(t *testing.T) {
	t.Parallel()
	// Long enough for the plain requests of a loaded machine; the stream
	// outlasts them several times over.
	limits := api.HTTPLimits{ReadTimeout: time.Second, WriteTimeout: time.Second}
	fb := setupFollow(t, limits)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	run, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Followed from before it starts: the stream waits for the log.
	rc, err := fb.client.FollowLogs(ctx, run.ID)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line: %q, %v", line, err)
	}
	// The job waits for release: the run is still going. (A process
	// started off the loop may print before its start is recorded, so
	// ready is as right as running here.)
	d, err := fb.client.Run(ctx, run.ID)
	if err != nil || d.State != talon.StateRunning && d.State != talon.StateReady {
		t.Fatalf("run %d while its first line streamed: %s, %v; want running (or ready, its start not yet recorded)", run.ID, d.State, err)
	}
	// Outlast both timeouts: a stream is not a request to cut short.
	<-time.After(3 * limits.WriteTimeout)
	fb.release(t)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("rest of the stream: %q, %v; want a clean end", rest, err)
	}
	if string(rest) != "second\n" {
		t.Errorf("rest of the stream = %q, want %q", rest, "second\n")
	}
	d, err = fb.client.Run(ctx, run.ID)
	if err != nil || d.State != talon.StateSucceeded {
		t.Errorf("run %d when the stream ended: %s, %v; want succeeded", run.ID, d.State, err)
	}

	// A finished run's log follows to its end at once; a plain read is
	// as before.
	for name, open := range map[string]func(context.Context, int64) (io.ReadCloser, error){
		"follow": fb.client.FollowLogs, "plain": fb.client.Logs,
	} {
		rc, err := open(ctx, run.ID)
		if err != nil {
			t.Fatalf("%s a finished run: %v", name, err)
		}
		all, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(all) != "first\nsecond\n" {
			t.Errorf("%s a finished run: %q, %v", name, all, err)
		}
	}

	var te *talon.Error
	if _, err := fb.client.FollowLogs(ctx, 999); !errors.As(err, &te) || te.Code != talon.ENOTFOUND {
		t.Errorf("follow an unknown run: %v, want not_found", err)
	}
}

// TestFollowLogShutdown: a server that shuts down while a run is followed
// cuts the stream, and the client sees an error, not the end of the run.
func TestFollowLogShutdown(t *testing.T) {
	t.Parallel()
	fb := setupFollow(t, api.HTTPLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	run, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := fb.client.FollowLogs(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, err := br.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line: %q, %v", line, err)
	}
	shut, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := fb.srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Shutdown while a log is followed: %v (it must not wait for the run)", err)
	}
	rest, err := io.ReadAll(br)
	if err == nil {
		t.Fatalf("stream cut by a shutdown ended cleanly after %q; the client would take it for the end of the run", rest)
	}
	fb.release(t)
}

// TestFollowLogWrittenLate follows the log of a run that started and has
// written nothing yet (the in-process executor creates the file at the
// first write): the stream waits for the file and has what is written.
func TestFollowLogWrittenLate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sched, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess"}}, "schedule.yaml",
		[]byte("jobs:\n  quiet:\n    period: daily\n    executor: inprocess\n    command: [quiet]\n"))
	if err != nil {
		t.Fatal(err)
	}
	started, write := make(chan struct{}), make(chan struct{})
	ex := inprocess.New()
	ex.Register("quiet", func(_ context.Context, r inprocess.Run) error {
		close(started)
		<-write
		_, err := io.WriteString(r.Log, "late line\n")
		return err
	})
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	e, err := engine.New(engine.Config{Store: st, Schedule: sched, Logger: logger, LogDir: filepath.Join(dir, "logs"),
		Executors: map[string]executor.Executor{"inprocess": ex}})
	if err != nil {
		t.Fatal(err)
	}
	loopDone := make(chan error, 1)
	go func() { loopDone <- e.Loop(ctx) }()
	hub := feed.New(st, logger, feed.Options{})
	go hub.Run(ctx)
	srv := api.NewHTTPServer(api.NewServer(api.Join(query.New(st, e, nil), e), logger, api.WithFeed(hub)), api.HTTPLimits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer func() {
		srv.Close()
		cancel()
		<-loopDone
	}()
	client := api.NewClient("http://"+ln.Addr().String(), nil)

	tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
	defer tcancel()
	run, _, err := client.Trigger(tctx, "quiet", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-tctx.Done():
		t.Fatal("the run did not start")
	}
	// Followed while running with no log file yet.
	rc, err := client.FollowLogs(tctx, run.ID)
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	defer rc.Close()
	close(write)
	all, err := io.ReadAll(rc)
	if err != nil || string(all) != "late line\n" {
		t.Errorf("followed log = %q, %v; want the line written after the follow began", all, err)
	}
}
