// Command embed is a small Go service with Talon inside it: Talon runs
// the service's own Go functions as scheduled jobs, keeps its state in
// SQLite (or PostgreSQL), and serves its API and dashboard on the
// service's own HTTP mux, beside the service's routes.
//
//	go run ./examples/embed                # serve on 127.0.0.1:8080 until Ctrl-C
//	go run ./examples/embed -once          # run the digest now, wait for it, exit
//
// Then, in another terminal:
//
//	curl http://127.0.0.1:8080/hello                  # the service's own route
//	curl http://127.0.0.1:8080/api/v1/jobs            # Talon's API
//	TALON_URL=http://127.0.0.1:8080 go run ./cmd/talon trigger digest
//	open http://127.0.0.1:8080/                       # the dashboard
//
// On a loopback address without -token-file anyone on this host may use
// the API; with -token-file (lines "NAME ROLE SHA256HEX") callers need a
// token, and any other address requires one.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/scheduler"
)

//go:embed schedule.yaml
var files embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run is the service: main without the process around it, so a test
// runs it as it is.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("embed", flag.ContinueOnError)
	fl.SetOutput(stderr)
	state := fl.String("state", "sqlite:embed.db", "state store: sqlite:PATH or postgres://…")
	listen := fl.String("listen", "127.0.0.1:8080", "HTTP address of the service")
	logs := fl.String("logs", "embed-logs", "directory for run logs")
	tokenFile := fl.String("token-file", "", "token file for the API (lines NAME ROLE SHA256HEX); needed off loopback")
	once := fl.Bool("once", false, "trigger today's digest, wait for it to end, and exit")
	if err := fl.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	// archive says which runs it ran, so -once can wait for the one that
	// follows its digest.
	archived := make(chan int64, 1)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	cfg := scheduler.Config{
		State: *state,
		Schedule: scheduler.Schedule{
			FS:    files,
			Paths: []string{"schedule.yaml"},
			Jobs: []talon.Job{{
				Name:        "digest",
				Description: "Summarise the day's items",
				Executor:    "inprocess",
				Function:    "digest",
				Triggers:    []talon.TriggerSpec{{Schedule: "every weekday at 06:00"}},
				Params:      map[string]any{"items": 5},
				Timeout:     10 * time.Minute,
				Retries:     talon.RetryPolicy{Max: 2, Delay: time.Minute},
			}},
		},
		Functions: map[string]scheduler.Func{"digest": digest, "archive": archiver(archived)},
		URL:       "http://" + ln.Addr().String(),
		LogDir:    *logs,
		Logger:    logger,
	}
	loopback := false
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		loopback = a.IP.IsLoopback()
	}
	switch {
	case *tokenFile != "":
		src, err := scheduler.OpenTokenFile(*tokenFile)
		if err != nil {
			return err
		}
		cfg.Auth = []scheduler.AuthSource{src}
	case loopback:
		cfg.Anonymous = true
	default:
		return fmt.Errorf("-listen %s is not a loopback address: give -token-file so the API needs a token", *listen)
	}

	s, err := scheduler.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()

	// The service's own routes and Talon's share one mux: Talon's API
	// under /api/v1/, its dashboard on the rest.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the service\n")
	})
	mux.Handle("/", s.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http", "err", err)
		}
	}()
	defer func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	fmt.Fprintf(stdout, "serving http://%s\n", ln.Addr())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(runCtx) }()
	if *once {
		err := digestNow(ctx, s, archived, stdout)
		stop()
		if rerr := <-ran; err == nil {
			err = rerr
		}
		return err
	}
	return <-ran
}

// digestNow triggers today's digest, as `talon trigger digest` would,
// waits for it to end, and then for the archive its success triggers.
func digestNow(ctx context.Context, s *scheduler.Scheduler, archived <-chan int64, stdout io.Writer) error {
	r, _, err := s.Trigger(ctx, "digest", talon.TriggerRequest{})
	if err != nil {
		return err
	}
	if err := report(ctx, s, r.ID, stdout); err != nil {
		return err
	}
	select {
	case id := <-archived:
		return report(ctx, s, id, stdout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// report waits for run id to end and prints how it did.
func report(ctx context.Context, s *scheduler.Scheduler, id int64, stdout io.Writer) error {
	r, err := s.Wait(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %d: %s %s: %s\n", r.ID, r.Job, r.Period, r.State)
	if r.State != talon.StateSucceeded {
		return fmt.Errorf("run %d of %s %s: %s", r.ID, r.Job, r.State, r.Reason)
	}
	return nil
}

// digest is a job's work: it goes through the day's items, reporting
// its progress after each, and stops as soon as its context says so (an
// operator's cancel, the job's timeout, the service shutting down).
func digest(ctx context.Context, r scheduler.Run) error {
	n := 3
	var p struct {
		Items int `json:"items"`
	}
	if err := json.Unmarshal(r.Params, &p); err == nil && p.Items > 0 {
		n = p.Items
	}
	for i := 1; i <= n; i++ {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		default:
		}
		fmt.Fprintf(r.Log, "item %d of %d\n", i, n)
		r.Progress(100 * float64(i) / float64(n))
	}
	// An artifact of the run: a line the engine reads, as from any job.
	fmt.Fprintf(r.Log, "::talon artifact file:///srv/digests/%s.txt digest\n", r.Run.Period)
	return nil
}

// archiver returns the archive job's work, which runs when digest has
// succeeded for the same period; it tells done which run it was, when
// someone listens.
func archiver(done chan<- int64) scheduler.Func {
	return func(_ context.Context, r scheduler.Run) error {
		fmt.Fprintf(r.Log, "archived the digest of %s\n", r.Run.Period)
		select {
		case done <- r.Run.ID:
		default:
		}
		return nil
	}
}
