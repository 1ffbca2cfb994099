//go:build chaos

package chaos

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// jobArg is the first argument that makes the test binary act as a job
// instead of running tests.
const jobArg = "chaosjob"

// Shapes of a job's process tree. The deepest process ticks (T lines) and
// says when it ends (a D line, also on SIGTERM); the top one (the process
// Talon started) writes the start and end lines (S, E). Only SIGKILL
// leaves a process without its last line.
const (
	shapeDirect = "direct" // the top process ticks itself
	shapeChild  = "child"  // top → ticker
	shapeShell  = "shell"  // top → sh -c 'sh -c "ticker" & wait' (a grandchild)
	shapeSetsid = "setsid" // top → sh → setsid ticker: outside the run's process group
)

// Environment the schedule gives every job.
const (
	envHistory = "CHAOS_HISTORY" // the history file
	envSelf    = "CHAOS_SELF"    // this binary
	envSeed    = "CHAOS_SEED"
	envDur     = "CHAOS_DUR"  // "MIN-MAX" milliseconds of work
	envFail    = "CHAOS_FAIL" // percent of executions that exit 1
	envTick    = "CHAOS_TICK" // tick interval, a Go duration
	// Set by the top process for the ticker.
	envTop    = "CHAOS_TOP"
	envWorkMS = "CHAOS_WORK_MS"
	envExit   = "CHAOS_EXIT"
)

// jobMain is the job program: "run SHAPE" for the top process, "tick" for
// the deepest. It returns the exit status.
func jobMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "chaosjob: want run SHAPE or tick")
		return 2
	}
	h, err := openHistory()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosjob:", err)
		return 2
	}
	switch args[0] {
	case "run":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "chaosjob: want run SHAPE")
			return 2
		}
		return h.top(args[1])
	case "tick":
		top, _ := strconv.Atoi(os.Getenv(envTop))
		work, _ := strconv.Atoi(os.Getenv(envWorkMS))
		code, _ := strconv.Atoi(os.Getenv(envExit))
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { h.tick(top, time.Duration(work)*time.Millisecond); close(done) }()
		select {
		case <-done:
			h.line("D", top, strconv.Itoa(code))
			return code
		case <-term:
			h.line("D", top, "TERM")
			return 143
		}
	}
	fmt.Fprintf(os.Stderr, "chaosjob: unknown mode %q\n", args[0])
	return 2
}

type history struct {
	f       *os.File
	run     string
	attempt string
	every   time.Duration
}

func openHistory() (*history, error) {
	path := os.Getenv(envHistory)
	if path == "" {
		return nil, errors.New(envHistory + " is not set")
	}
	// O_APPEND and one write per line: lines of concurrent processes
	// never interleave.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	every, err := time.ParseDuration(os.Getenv(envTick))
	if err != nil || every <= 0 {
		every = 100 * time.Millisecond
	}
	return &history{f: f, run: os.Getenv("TALON_RUN_ID"), attempt: os.Getenv("TALON_ATTEMPT"), every: every}, nil
}

// line appends "KIND RUN ATTEMPT TOP PID UNIXNANO REST…".
func (h *history) line(kind string, top int, rest ...string) {
	s := fmt.Sprintf("%s %s %s %d %d %d", kind, h.run, h.attempt, top, os.Getpid(), time.Now().UnixNano())
	if len(rest) > 0 {
		s += " " + strings.Join(rest, " ")
	}
	_, _ = h.f.Write([]byte(s + "\n"))
}

// top is the process Talon started: it decides how long the work takes
// and how it ends (from the seed, the run and the attempt), writes the
// start line, runs the shape's tree, and writes the end line with the
// exit status it then exits with. SIGTERM (a timeout or a cancel) ends it
// with 143 after an end line saying so.
func (h *history) top(shape string) int {
	me := os.Getpid()
	work, code := h.plan()
	h.line("S", me, os.Getenv("TALON_JOB"), shape, ancestors())

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	end := func(status string, code int) int {
		h.line("E", me, status)
		return code
	}
	env := append(os.Environ(), envTop+"="+strconv.Itoa(me), envWorkMS+"="+strconv.FormatInt(work.Milliseconds(), 10), envExit+"="+strconv.Itoa(code))
	self := os.Getenv(envSelf)
	var cmd *exec.Cmd
	switch shape {
	case shapeDirect:
		done := make(chan struct{})
		go func() { h.tick(me, work); close(done) }()
		select {
		case <-done:
			h.line("D", me, strconv.Itoa(code))
			return end(strconv.Itoa(code), code)
		case <-term:
			h.line("D", me, "TERM")
			return end("TERM", 143)
		}
	case shapeChild:
		cmd = exec.Command(self, jobArg, "tick")
	case shapeShell:
		// The inner shell's "; exit" keeps it from exec'ing the ticker,
		// so the tree really is top → sh → sh → ticker.
		cmd = exec.Command("sh", "-c", `sh -c '"$CHAOS_SELF" chaosjob tick; exit $?' & wait $!`)
	case shapeSetsid:
		cmd = exec.Command("sh", "-c", `setsid "$CHAOS_SELF" chaosjob tick & wait $!`)
	default:
		fmt.Fprintf(os.Stderr, "chaosjob: unknown shape %q\n", shape)
		return end("2", 2)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "chaosjob:", err)
		return end("2", 2)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-term:
		return end("TERM", 143)
	case err := <-waited:
		c := 0
		if err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return end("2", 2)
			}
			c = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				c = 128 + int(ws.Signal())
			}
		}
		return end(strconv.Itoa(c), c)
	}
}

// tick writes a tick line every interval for work, and a last one at the
// end.
func (h *history) tick(top int, work time.Duration) {
	deadline := time.Now().Add(work)
	t := time.NewTicker(h.every)
	defer t.Stop()
	h.line("T", top)
	for time.Now().Before(deadline) {
		left := time.Until(deadline)
		if left < h.every {
			time.Sleep(left)
			break
		}
		<-t.C
		h.line("T", top)
	}
	h.line("T", top)
}

// plan draws the work's length and exit status from the seed, the run and
// the attempt, so a run's behaviour does not depend on which scheduler
// started it.
func (h *history) plan() (time.Duration, int) {
	hs := fnv.New64a()
	fmt.Fprintf(hs, "%s/%s/%s/%s", os.Getenv(envSeed), os.Getenv("TALON_JOB"), h.run, h.attempt)
	x := hs.Sum64()
	lo, hi := 500, 500
	if a, b, ok := strings.Cut(os.Getenv(envDur), "-"); ok {
		lo, _ = strconv.Atoi(a)
		hi, _ = strconv.Atoi(b)
	}
	work := lo
	if hi > lo {
		work += int(x % uint64(hi-lo+1))
	}
	fail, _ := strconv.Atoi(os.Getenv(envFail))
	code := 0
	if int((x>>32)%100) < fail {
		code = 1
	}
	return time.Duration(work) * time.Millisecond, code
}

// ancestors lists the pids above this process (parent first, a few
// levels), so the checker knows which scheduler started the run even
// after another one re-attached it: Talon's owner column moves, the
// process tree does not.
func ancestors() string {
	var out []string
	pid := os.Getppid()
	for range 4 {
		if pid <= 1 {
			break
		}
		out = append(out, strconv.Itoa(pid))
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break
		}
		// The command name (in parentheses) may hold spaces; the parent
		// pid is the second field after it.
		fs := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fs) < 2 {
			break
		}
		pid, _ = strconv.Atoi(fs[1])
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}
