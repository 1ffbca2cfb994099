// Package scheduler embeds Talon in a Go program: a scheduler of
// periodic jobs under constraints, running the program's own Go
// functions (and subprocesses, and any executor the program adds), with
// its state in SQLite or PostgreSQL and its HTTP API and dashboard
// mounted on the program's own mux. It is what `talon serve` runs,
// without the config file and the listener: the same engine, the same
// store, the same API, the same guarantees (docs/guarantees.md).
//
// # Use
//
// Open a Scheduler with a state store, a schedule and the functions its
// jobs name; mount its Handler if you want the API; Run it; Close it.
//
//	report := func(ctx context.Context, r scheduler.Run) error {
//		for i := range 10 {
//			if err := step(ctx, i); err != nil { // honour ctx: it is how a cancel arrives
//				return err
//			}
//			r.Progress(float64(i+1) * 10)
//		}
//		return nil
//	}
//	s, err := scheduler.Open(ctx, scheduler.Config{
//		State: "sqlite:service.db",
//		Schedule: scheduler.Schedule{Jobs: []talon.Job{{
//			Name:     "report",
//			Executor: "inprocess",
//			Function: "report",
//			Triggers: []talon.TriggerSpec{{Schedule: "every day at 06:00"}},
//		}}},
//		Functions: map[string]scheduler.Func{"report": report},
//		Auth:      []scheduler.AuthSource{tokens},
//	})
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	mux.Handle("/api/v1/", s.Handler())
//	return s.Run(ctx) // until ctx ends
//
// The same job in a schedule file (Schedule.Paths) reads:
//
//	jobs:
//	  report:
//	    executor: inprocess
//	    function: report
//	    schedule: "every day at 06:00"
//
// The older form command: [report, ARGS...] still names the function
// (the other words become Run.Args), and a job of the inprocess executor
// with neither runs the function named like the job.
//
// # Functions
//
// A Func gets a context, cancelled with a cause when the run must stop
// (an operator's cancel, the job's timeout, the scheduler stopping), and
// a Run: the run's id, period and attempt, its parameters as JSON, its
// log, and Progress to report how far it has come. Functions run in the
// program's process: after a crash their runs are declared lost and
// retried per the job's retries, so make them idempotent.
//
// # Extending
//
// The kinds a schedule names come from registries shared by every
// Scheduler of the program: RegisterConstraint adds a constraint kind
// (constraints: {KIND: VALUE}), RegisterTrigger a trigger kind ({kind:
// KIND, schedule: EXPR}). Register them before Open. Executors are
// values, one set per Scheduler (Config.Executors), as are the sources
// that authenticate API callers (Config.Auth; NewTokens and
// OpenTokenFile build Talon's own). The optional interfaces the engine
// looks for on them are declared here: Quick, Prestarter, Locator,
// Reattacher and Fencer for executors; Slow, ArtifactWaiter, Fenced, Dependent and
// PeriodDependent for constraints.
//
// State stores are chosen by URL (Config.State): "sqlite:PATH" or
// "postgres://…". Their contract is large and still changing, so a
// program cannot add its own.
//
// The vocabulary — talon.Job, talon.Run, talon.State, talon.Action,
// talon.Progress, talon.TriggerRequest — is the root package's,
// github.com/talonhq/talon. Everything else of Talon is internal and may
// change; this package and the root package are the API a program may
// rely on.
//
// # HTTP
//
// Handler serves /api/v1/… (docs/api.md) and the dashboard's pages, each
// route authorized as Config says: with Config.Auth, every route but
// GET /api/v1/healthz needs a token whose role allows it; without it,
// only Config.Anonymous (for a handler no other host can reach) lets
// anyone in. Its paths are absolute: mount it at "/api/v1/" for the API
// alone, or at "/" for the dashboard too, never under a prefix.
package scheduler
