// Package chaos is Talon's fault-injection harness. It is a test whose
// files are built only with the chaos tag (this file holds nothing but
// this comment), so the normal suite never runs it:
//
//	go test -tags chaos -count=1 -run TestChaos ./internal/chaos
//	go test -tags chaos -count=1 -run TestChaos -timeout 60m ./internal/chaos \
//		-chaos.duration 20m -chaos.seed 7 -chaos.keep
//
// It builds the talon binary, starts its own PostgreSQL cluster (initdb and
// pg_ctl on a free loopback port, as the postgres user when run as root),
// starts three `talon serve` on it with a generated schedule, injects
// faults on a seeded random plan (SIGKILL and restart of a scheduler,
// SIGSTOP past the lease, the database stopped past the lease or crashed
// with -m immediate, pg_terminate_backend of Talon's connections), waits
// for the runs to settle and then checks Talon's promises against what
// really happened.
//
// What really happened is written by the jobs themselves, outside Talon:
// every job runs this test binary as its program (TestMain dispatches on
// its first argument), which appends a start line, ticks every 100 ms from
// the deepest process of the run's tree, a last line from that process
// and an end line with the exit status to one history file. A process
// that was SIGKILLed writes no last line, but its last tick says when it
// was last alive; the tick that might have followed is the uncertainty
// the report counts.
package chaos
