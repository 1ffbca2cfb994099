package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/scheduler"
)

// A program runs a Go function as a daily job, serves Talon's API
// beside its own routes, and triggers a run itself.
func Example() {
	dir, err := os.MkdirTemp("", "talon-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s, err := scheduler.Open(ctx, scheduler.Config{
		State:  "sqlite:" + filepath.Join(dir, "talon.db"),
		LogDir: filepath.Join(dir, "logs"),
		Schedule: scheduler.Schedule{Jobs: []talon.Job{{
			Name:     "report",
			Executor: "inprocess",
			Function: "report",
			Triggers: []talon.TriggerSpec{{Schedule: "every day at 06:00"}},
		}}},
		Functions: map[string]scheduler.Func{
			"report": func(ctx context.Context, r scheduler.Run) error {
				fmt.Fprintf(r.Log, "report for %s\n", r.Run.Period)
				r.Progress(50)
				return ctx.Err()
			},
		},
		Anonymous: true, // the API is for this host only
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", s.Handler()) // next to the program's own routes
	go s.Run(ctx)

	run, _, err := s.Trigger(ctx, "report", talon.TriggerRequest{Key: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	run, err = s.Wait(ctx, run.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(run.Job, run.State)
	// Output: report succeeded
}

// marketOpen is a constraint kind: `market_open: true` blocks a run
// until the market opens at 09:30 in the job's zone.
type marketOpen struct{}

func (marketOpen) Name() string { return "market_open" }

func (marketOpen) Check(_ context.Context, in scheduler.ConstraintInput) scheduler.Answer {
	now := in.Now.In(in.Job.Location)
	opens := time.Date(now.Year(), now.Month(), now.Day(), 9, 30, 0, 0, now.Location())
	if now.Before(opens) {
		// RecheckAt: the engine looks again then, without polling.
		return scheduler.Answer{Action: talon.ActionBlock, Reason: "market opens at 09:30", RecheckAt: opens}
	}
	return scheduler.Answer{Action: talon.ActionPass, Reason: "market open"}
}

// A program adds a constraint kind before it opens its scheduler; its
// schedules then name it like the built-in ones.
func ExampleRegisterConstraint() {
	scheduler.RegisterConstraint("market_open", func(v any) (scheduler.Constraint, error) {
		if on, ok := v.(bool); !ok || !on {
			return nil, fmt.Errorf("market_open: want true, not %v", v)
		}
		return marketOpen{}, nil
	})
	// jobs:
	//   trade:
	//     executor: inprocess
	//     constraints: {market_open: true}
}
