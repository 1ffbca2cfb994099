// Package inprocess is the executor that runs Go functions inside the
// scheduler, for programs that embed Talon, and for tests and benchmarks.
//
// A job names its function with function: resize (talon.Job.Function),
// or in the older form in its command: command: [resize, --width, 800]
// calls the function registered as "resize" with args [--width, 800].
// A job with neither runs the function named like itself. Functions run in their own goroutine with a context that Cancel
// cancels with its cause; a function that ignores its context cannot be
// stopped, and Wait returns when it returns. A panic fails the run with
// the panic's text.
//
// Functions live and die with the scheduler's process, so nothing of
// them survives a crash. They cannot fence themselves, though: a
// goroutine cannot be stopped from outside, and it shares the scheduler's
// fate when the scheduler is frozen or cut off from the state store. Its
// processes are not executor.Fencers, and Spec.FenceIn is ignored; a
// scheduler whose lease lapsed cancels them when it notices.
//
// Starting a run costs a goroutine and a few small allocations; the log
// file is opened only when the function first writes to it, so runs that
// write nothing never touch the disk.
package inprocess

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
)

// Func is a job's work. Returning nil means the run succeeded; an error's
// text becomes the run's failure reason.
type Func func(ctx context.Context, r Run) error

// Run is what a Func knows about its run.
type Run struct {
	// Run is the run row as the engine dispatched it.
	Run talon.Run
	// Params is the JSON of the run's parameters.
	Params []byte
	// Args are the job's command after the function name (the older
	// form, command: [NAME, ARGS...]); nil with function: NAME.
	Args []string
	// Env holds the TALON_* variables as KEY=VALUE.
	Env []string
	// Log receives the run's output: it goes to the run's log file, the
	// log store (so every scheduler shows it) and,
	// line by line, to the engine (so "::talon artifact URL" lines work
	// as they do for subprocesses). Safe for concurrent use.
	Log *Log

	onLine func(string)
}

// Progress reports the run's progress in percent. It is safe to call on
// a zero Run, and cheap enough to call often.
func (r Run) Progress(percent float64) {
	if r.onLine != nil {
		r.onLine("::talon progress " + strconv.FormatFloat(percent, 'g', -1, 64) + "%")
	}
}

// Executor runs registered functions.
type Executor struct {
	mu    sync.RWMutex
	funcs map[string]Func
}

var _ executor.Executor = (*Executor)(nil)

// Quick: Start only starts a goroutine, so the engine calls it on its loop.
func (e *Executor) Quick() bool { return true }

// HandleOf is a run's handle, known before it starts (executor.Prestarter).
func (e *Executor) HandleOf(job *talon.Job) string {
	name, _ := function(job)
	return "func:" + name
}

// function is the name of the function job runs and its arguments: its
// Function, else its command's first word, else its name; the arguments
// are the rest of its command. (The schedule loader fills Function in;
// jobs built by hand may rely on the rest.)
func function(job *talon.Job) (name string, args []string) {
	if job == nil {
		return "", nil
	}
	name = job.Function
	if len(job.Command) > 0 {
		if name == "" {
			name = job.Command[0]
		}
		args = job.Command[1:]
	}
	if name == "" {
		name = job.Name
	}
	return name, args
}

// New returns an executor with the built-in functions "noop" (returns
// at once) and "sleep" (args: a duration such as "2s"; returns early with
// the cause when cancelled).
func New() *Executor {
	e := &Executor{funcs: map[string]Func{}}
	e.Register("noop", noop)
	e.Register("sleep", sleep)
	return e
}

// Register makes f available to jobs that name it (function: name, or
// command: [name, …]).
// Registering a name again replaces the earlier function.
func (e *Executor) Register(name string, f Func) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.funcs[name] = f
}

// Names lists the registered functions, sorted.
func (e *Executor) Names() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]string, 0, len(e.funcs))
	for k := range e.funcs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Start calls the job's function (see function) in a new goroutine. It
// returns an error listing the known names when there is no such
// function.
func (e *Executor) Start(ctx context.Context, s executor.Spec) (executor.Process, error) {
	name, args := function(s.Job)
	if name == "" {
		return nil, errors.New("start: job names no function (want function: NAME)")
	}
	e.mu.RLock()
	f := e.funcs[name]
	e.mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("start %s: unknown function %q (known: %s)", s.Job.Name, name, strings.Join(e.Names(), ", "))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	// The run outlives Start's ctx: only Cancel ends it.
	rctx, cancel := context.WithCancelCause(context.Background())
	p := &process{name: name, cancel: cancel, done: make(chan struct{})}
	r := Run{Run: s.Run, Params: s.Params, Args: args, Env: s.Env, onLine: s.OnLine}
	if s.LogPath != "" || s.OnLine != nil || s.Logs != nil {
		r.Log = &Log{path: s.LogPath, onLine: s.OnLine, logs: s.Logs, run: s.Run.ID, limit: s.LogLimit}
		if len(s.Secrets) > 0 {
			r.Log.mask = executor.NewMasker(rawLog{r.Log}, s.Secrets)
		}
	}
	go p.run(rctx, f, r)
	return p, nil
}

// Recover always declares the run lost: a function's goroutine died with
// the scheduler that ran it.
func (e *Executor) Recover(_ context.Context, _ talon.Run, handle string) (executor.Process, error) {
	name, ok := strings.CutPrefix(handle, "func:")
	if !ok {
		return nil, fmt.Errorf("%w: scheduler restarted; handle %q is not an inprocess function", executor.ErrLost, handle)
	}
	return nil, fmt.Errorf("%w: scheduler restarted while function %s was running", executor.ErrLost, name)
}

type process struct {
	name    string
	cancel  context.CancelCauseFunc
	done    chan struct{}
	outcome executor.Outcome
}

func (p *process) Handle() string { return "func:" + p.name }

func (p *process) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

// Cancel cancels the function's context with cause; a cancel after the
// function returned changes nothing.
func (p *process) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.cancel(cause)
}

func (p *process) run(ctx context.Context, f Func, r Run) {
	defer close(p.done)
	defer p.cancel(nil) // release the context's resources
	err := call(ctx, f, r)
	// A log that could not be written does not fail a run that did its
	// work; the function saw the error from Write if it cared.
	_ = r.Log.close()
	switch {
	case ctx.Err() != nil:
		// Cancelled: fail with the cause, even if the function swallowed
		// it and returned nil, as the local executor does.
		p.outcome = executor.Outcome{ExitCode: 1, Reason: context.Cause(ctx).Error()}
	case err != nil:
		p.outcome = executor.Outcome{ExitCode: 1, Reason: err.Error()}
	default:
		p.outcome = executor.Outcome{Succeeded: true, Reason: "succeeded"}
	}
	if p.outcome.Reason == "" {
		p.outcome.Reason = "failed"
	}
}

// call runs f, turning a panic into an error and its stack into the log.
func call(ctx context.Context, f Func, r Run) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
			if r.Log != nil {
				fmt.Fprintf(r.Log, "panic: %v\n%s", v, debug.Stack())
			}
		}
	}()
	return f(ctx, r)
}

func noop(context.Context, Run) error { return nil }

func sleep(ctx context.Context, r Run) error {
	if len(r.Args) != 1 {
		return fmt.Errorf("sleep: want one argument, a duration like \"2s\", got %d", len(r.Args))
	}
	d, err := time.ParseDuration(r.Args[0])
	if err != nil {
		return fmt.Errorf("sleep: want a duration like \"2s\", got %q", r.Args[0])
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Log is a run's output. The file and the log store's writer are made
// on the first write, so a run that writes nothing costs no file and no
// statement. The values of the job's secrets are masked before they
// reach the file, the store or the engine, as the local executor does
// with a command's output.
type Log struct {
	path   string
	onLine func(string)
	logs   executor.LogStore // nil: no log store
	run    int64
	limit  int64
	mask   *executor.Masker // nil without secrets

	mu      sync.Mutex
	f       *os.File
	werr    error
	store   *executor.LogWriter
	partial []byte
	closed  bool
}

const maxLine = 64 << 10

// Write appends b to the run's log and passes complete lines on. It fails
// only when the log file cannot be written, and it is nil-safe so a Func
// may write to a Run without a log.
func (l *Log) Write(b []byte) (int, error) {
	if l == nil {
		return len(b), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mask != nil {
		if _, err := l.mask.Write(b); err != nil {
			return len(b), err
		}
		return len(b), nil
	}
	return l.write(b)
}

// rawLog is a Log after masking.
type rawLog struct{ l *Log }

func (r rawLog) Write(b []byte) (int, error) { return r.l.write(b) }

// write writes masked output; l.mu is held.
func (l *Log) write(b []byte) (int, error) {
	n := len(b)
	if l.path != "" && !l.closed {
		if l.f == nil && l.werr == nil {
			l.f, l.werr = openLog(l.path)
		}
		if l.f != nil && l.werr == nil {
			_, l.werr = l.f.Write(b)
		}
	}
	if l.logs != nil && !l.closed {
		if l.store == nil {
			l.store = executor.NewLogWriter(l.logs, l.run, 0, executor.LogOptions{Limit: l.limit, Where: l.path})
		}
		_, _ = l.store.Write(b) // never fails
	}
	if l.onLine != nil {
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				l.appendPartial(b)
				break
			}
			l.appendPartial(b[:i])
			l.emit()
			b = b[i+1:]
		}
	}
	if l.werr != nil {
		return n, fmt.Errorf("write run log: %w", l.werr)
	}
	return n, nil
}

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

func (l *Log) appendPartial(b []byte) {
	if room := maxLine - len(l.partial); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		l.partial = append(l.partial, b...)
	}
}

func (l *Log) emit() {
	line := strings.TrimSuffix(string(l.partial), "\r")
	l.partial = l.partial[:0]
	l.onLine(line)
}

// close flushes a last unterminated line, closes the file and stores
// what the log store has not yet; writes after it reach neither (a
// goroutine the function left behind).
func (l *Log) close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.mask != nil && !l.closed {
		_ = l.mask.Flush() // its error is kept in l.werr
	}
	if l.onLine != nil && len(l.partial) > 0 {
		l.emit()
	}
	l.closed = true
	if l.f != nil {
		if err := l.f.Close(); err != nil && l.werr == nil {
			l.werr = err
		}
		l.f = nil
	}
	st, werr := l.store, l.werr
	l.mu.Unlock()
	if st != nil {
		// The store keeps trying by itself when it is away.
		_ = st.Close()
	}
	return werr
}
