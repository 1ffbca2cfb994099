package inprocess_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
)

func spec(dir string, argv ...string) executor.Spec {
	s := executor.Spec{
		Run:    talon.Run{ID: 42, Job: "load", Period: "daily/2026-11-26"},
		Job:    &talon.Job{Name: "load", Command: argv},
		Env:    []string{"TALON_RUN_ID=42"},
		Params: []byte(`{"size":3}`),
	}
	if dir != "" {
		s.LogPath = filepath.Join(dir, "logs", "42.log")
	}
	return s
}

func wait(t *testing.T, p executor.Process) executor.Outcome {
	t.Helper()
	ch := make(chan executor.Outcome, 1)
	go func() { ch <- p.Wait() }()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatalf("run %s did not end", p.Handle())
	}
	return executor.Outcome{}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		f             inprocess.Func
		wantSucceeded bool
		wantReason    string
	}{
		{name: "success", f: func(context.Context, inprocess.Run) error { return nil },
			wantSucceeded: true, wantReason: "succeeded"},
		{name: "error", f: func(context.Context, inprocess.Run) error { return errors.New("no rows for 2026-11-26") },
			wantReason: "no rows for 2026-11-26"},
		{name: "empty error text", f: func(context.Context, inprocess.Run) error { return errors.New("") },
			wantReason: "failed"},
		{name: "panic", f: func(context.Context, inprocess.Run) error { panic("index out of range") },
			wantReason: "panic: index out of range"},
		{name: "panic with error", f: func(context.Context, inprocess.Run) error { panic(fmt.Errorf("bad %d", 7)) },
			wantReason: "panic: bad 7"},
		{name: "sees run, params, args and env", f: func(_ context.Context, r inprocess.Run) error {
			got := fmt.Sprintf("%d %s %s %s", r.Run.ID, r.Params, strings.Join(r.Args, ","), strings.Join(r.Env, ","))
			if want := `42 {"size":3} a b,c TALON_RUN_ID=42`; got != want {
				return fmt.Errorf("run = %q, want %q", got, want)
			}
			return nil
		}, wantSucceeded: true, wantReason: "succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex := inprocess.New()
			ex.Register("f", tt.f)
			p, err := ex.Start(t.Context(), spec(t.TempDir(), "f", "a b", "c"))
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if p.Handle() != "func:f" {
				t.Errorf("Handle = %q, want func:f", p.Handle())
			}
			o := wait(t, p)
			if o.Succeeded != tt.wantSucceeded || o.Reason != tt.wantReason {
				t.Errorf("outcome = %+v, want succeeded %v reason %q", o, tt.wantSucceeded, tt.wantReason)
			}
			if o.Succeeded != (o.ExitCode == 0) {
				t.Errorf("exit code %d does not match succeeded %v", o.ExitCode, o.Succeeded)
			}
		})
	}
}

func TestPanicStackInLog(t *testing.T) {
	ex := inprocess.New()
	ex.Register("boom", func(context.Context, inprocess.Run) error { panic("boom") })
	s := spec(t.TempDir(), "boom")
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	if !strings.HasPrefix(string(b), "panic: boom\ngoroutine ") {
		t.Errorf("log = %q, want the panic and its stack", b)
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name  string
		f     inprocess.Func
		argv  []string
		cause error
		want  string
	}{
		{name: "returns cause", argv: []string{"f"}, cause: errors.New("cancelled by alice"), want: "cancelled by alice",
			f: func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return context.Cause(ctx) }},
		{name: "swallows cancel", argv: []string{"f"}, cause: errors.New("killed: timeout after 2h"), want: "killed: timeout after 2h",
			f: func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return nil }},
		{name: "nil cause", argv: []string{"f"}, want: "cancelled",
			f: func(ctx context.Context, _ inprocess.Run) error { <-ctx.Done(); return ctx.Err() }},
		{name: "built-in sleep", argv: []string{"sleep", "1h"}, cause: errors.New("cancelled by bob"), want: "cancelled by bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ex := inprocess.New()
			if tt.f != nil {
				ex.Register("f", tt.f)
			}
			p, err := ex.Start(t.Context(), spec("", tt.argv...))
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			p.Cancel(tt.cause)
			o := wait(t, p)
			if o.Succeeded || o.Reason != tt.want {
				t.Errorf("outcome = %+v, want failed with %q", o, tt.want)
			}
		})
	}
}

func TestCancelAfterEnd(t *testing.T) {
	p, err := inprocess.New().Start(t.Context(), spec("", "noop"))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	p.Cancel(errors.New("too late"))
	if o := p.Wait(); !o.Succeeded {
		t.Errorf("outcome = %+v, want the original success", o)
	}
}

// TestStartContext: Start's context bounds only the start; the run goes
// on after it is cancelled.
func TestStartContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	release := make(chan struct{})
	ex := inprocess.New()
	ex.Register("f", func(ctx context.Context, _ inprocess.Run) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	p, err := ex.Start(ctx, spec("", "f"))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	close(release)
	if o := wait(t, p); !o.Succeeded {
		t.Errorf("outcome = %+v, want success", o)
	}
	if _, err := ex.Start(ctx, spec("", "f")); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a done context = %v, want context.Canceled", err)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{name: "unknown", argv: []string{"resize"}, want: `start load: unknown function "resize" (known: noop, sleep)`},
		// Without a command, the function named like the job runs.
		{name: "no command", want: `start load: unknown function "load" (known: noop, sleep)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inprocess.New().Start(t.Context(), spec("", tt.argv...))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Start error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSleepArgs(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		wantSucceeded bool
		wantReason    string
	}{
		{name: "short", args: []string{"1ms"}, wantSucceeded: true, wantReason: "succeeded"},
		{name: "no arg", wantReason: `sleep: want one argument, a duration like "2s", got 0`},
		{name: "bad arg", args: []string{"soon"}, wantReason: `sleep: want a duration like "2s", got "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := inprocess.New().Start(t.Context(), spec("", append([]string{"sleep"}, tt.args...)...))
			if err != nil {
				t.Fatal(err)
			}
			if o := wait(t, p); o.Succeeded != tt.wantSucceeded || o.Reason != tt.wantReason {
				t.Errorf("outcome = %+v, want %v %q", o, tt.wantSucceeded, tt.wantReason)
			}
		})
	}
}

func TestLogAndProgress(t *testing.T) {
	ex := inprocess.New()
	ex.Register("f", func(_ context.Context, r inprocess.Run) error {
		r.Progress(40)
		fmt.Fprintln(r.Log, "loaded 3 rows")
		fmt.Fprint(r.Log, "::talon artifact s3://b/x.csv\r\nno newline")
		r.Progress(12.5)
		return nil
	})
	s := spec(t.TempDir(), "f")
	var mu sync.Mutex
	var lines []string
	s.OnLine = func(l string) {
		mu.Lock()
		lines = append(lines, l)
		mu.Unlock()
	}
	p, err := ex.Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	mu.Lock()
	got := strings.Join(lines, "|")
	mu.Unlock()
	want := "::talon progress 40%|loaded 3 rows|::talon artifact s3://b/x.csv|::talon progress 12.5%|no newline"
	if got != want {
		t.Errorf("lines = %q, want %q", got, want)
	}
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "loaded 3 rows\n::talon artifact s3://b/x.csv\r\nno newline"; string(b) != want {
		t.Errorf("log = %q, want %q", b, want)
	}
	fi, err := os.Stat(s.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode = %v, want 0600", fi.Mode().Perm())
	}
}

// TestLogLazy: a run that writes nothing creates no file, and a Run
// without a log can still be written to and report progress.
func TestLogLazy(t *testing.T) {
	s := spec(t.TempDir(), "noop")
	p, err := inprocess.New().Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, p)
	if _, err := os.Stat(filepath.Dir(s.LogPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log directory exists (%v), want no file for a silent run", err)
	}

	ex := inprocess.New()
	ex.Register("f", func(_ context.Context, r inprocess.Run) error {
		r.Progress(50)
		_, err := fmt.Fprintln(r.Log, "nowhere")
		return err
	})
	p, err = ex.Start(t.Context(), spec("", "f"))
	if err != nil {
		t.Fatal(err)
	}
	if o := wait(t, p); !o.Succeeded {
		t.Errorf("outcome = %+v, want success", o)
	}
}

func TestRecover(t *testing.T) {
	tests := []struct {
		handle string
		want   string
	}{
		{handle: "func:load", want: "lost: scheduler restarted while function load was running"},
		{handle: "pid:12", want: `lost: scheduler restarted; handle "pid:12" is not an inprocess function`},
	}
	for _, tt := range tests {
		t.Run(tt.handle, func(t *testing.T) {
			_, err := inprocess.New().Recover(t.Context(), talon.Run{ID: 1}, tt.handle)
			if !errors.Is(err, executor.ErrLost) || err.Error() != tt.want {
				t.Errorf("Recover = %v, want ErrLost %q", err, tt.want)
			}
		})
	}
}

func TestRegisterConcurrent(t *testing.T) {
	ex := inprocess.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ex.Register(fmt.Sprintf("f%d", i), func(context.Context, inprocess.Run) error { return nil })
			p, err := ex.Start(t.Context(), spec("", "noop"))
			if err != nil {
				t.Error(err)
				return
			}
			p.Wait()
		})
	}
	wg.Wait()
	if n := len(ex.Names()); n != 10 {
		t.Errorf("%d names, want 10", n)
	}
}

// BenchmarkStartWait measures one run's cost through the executor: the
// engine pushes thousands of runs a second through it.
func BenchmarkStartWait(b *testing.B) {
	ex := inprocess.New()
	s := spec(b.TempDir(), "noop")
	s.OnLine = func(string) {}
	b.ReportAllocs()
	for b.Loop() {
		p, err := ex.Start(context.Background(), s)
		if err != nil {
			b.Fatal(err)
		}
		p.Wait()
	}
}

// TestFunctionName: function: names the function and passes no
// arguments; command: [NAME, ARGS...] is the older form; with neither,
// the function named like the job runs. The handle names the function
// before and after the start.
func TestFunctionName(t *testing.T) {
	tests := []struct {
		name     string
		job      talon.Job
		wantFunc string
		wantArgs []string
	}{
		{name: "function", job: talon.Job{Name: "load", Function: "f"}, wantFunc: "f"},
		{name: "command", job: talon.Job{Name: "load", Command: []string{"f", "--a", "b c"}}, wantFunc: "f", wantArgs: []string{"--a", "b c"}},
		{name: "job name", job: talon.Job{Name: "f"}, wantFunc: "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := inprocess.New()
			got := make(chan []string, 1)
			ex.Register("f", func(_ context.Context, r inprocess.Run) error {
				got <- r.Args
				return nil
			})
			s := spec("")
			s.Job = &tt.job
			if h := ex.HandleOf(&tt.job); h != "func:"+tt.wantFunc {
				t.Errorf("HandleOf = %q, want %q", h, "func:"+tt.wantFunc)
			}
			p, err := ex.Start(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			if o := wait(t, p); !o.Succeeded {
				t.Fatalf("outcome = %+v, want success", o)
			}
			if args := <-got; strings.Join(args, "|") != strings.Join(tt.wantArgs, "|") || len(args) != len(tt.wantArgs) {
				t.Errorf("args = %q, want %q", args, tt.wantArgs)
			}
			if h := p.Handle(); h != "func:"+tt.wantFunc {
				t.Errorf("Handle = %q, want %q", h, "func:"+tt.wantFunc)
			}
		})
	}
}
