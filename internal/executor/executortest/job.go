package executortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Job is what a case asks a backend to run. Every backend runs the same
// behaviour, written in its own terms by Backend.Command: a POSIX shell
// script for backends that run commands (ShellCommand), a Go function
// for the in-process executor (Behave).
type Job struct {
	// Marker is unique to the case. It is in the command line of every
	// process the job starts, so Backend.Left finds them, and in the
	// lines it prints.
	Marker string
	// Mode is what the job does; Args are its arguments.
	Mode Mode
	Args []string
}

// Mode is a job's behaviour.
type Mode string

// The behaviours a case can ask for.
const (
	// ModeExit prints "hello from MARKER", a progress line and "to
	// stderr" (on stderr), then exits with the status in Args[0].
	ModeExit Mode = "exit"
	// ModeEcho prints, each followed by a NUL byte, the values of the
	// environment variables named in Args up to "--", then the arguments
	// after it.
	ModeEcho Mode = "echo"
	// ModeBlock starts a child process that carries the marker too,
	// prints "ready", and waits until it is killed. With Args[0] ==
	// "ignoreterm", the job and its child ignore SIGTERM.
	ModeBlock Mode = "block"
	// ModeRun prints "started MARKER", sleeps Args[0] seconds, prints
	// "ended MARKER" and exits with the status in Args[1]: a job that
	// ends by itself while its scheduler is away.
	ModeRun Mode = "run"
	// ModeMissing is a command that does not exist.
	ModeMissing Mode = "missing"
	// ModeNow prints the time it started at, in nanoseconds since the
	// Unix epoch, and exits 0: the benchmarks' job (date +%s%N, started
	// directly, with no shell in between).
	ModeNow Mode = "now"
)

// MissingProgram is the command of a ModeMissing job.
const MissingProgram = "talon-executortest-no-such-program"

// shellScript is the job of ShellCommand, for every mode but missing. It
// receives the marker as $0 (so it is in the command line) and the mode
// and its arguments as "$@": nothing of them is ever part of the script.
const shellScript = `m=$0; mode=$1; shift
case $mode in
exit)
  printf 'hello from %s\n' "$m"
  printf '::talon progress 40%%\n'
  printf 'to stderr\n' >&2
  exit "$1";;
echo)
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    case $1 in *[!A-Za-z0-9_]*) echo "bad name $1" >&2; exit 2;; esac
    eval "v=\${$1-}"
    printf '%s\000' "$v"
    shift
  done
  [ "$#" -gt 0 ] && shift
  for a in "$@"; do printf '%s\000' "$a"; done;;
block)
  [ "$1" = ignoreterm ] && trap '' TERM
  sh -c 'while :; do sleep 1; done' "$m" &
  printf 'ready %s\n' "$m"
  wait;;
run)
  printf 'started %s\n' "$m"
  sleep "$1"
  printf 'ended %s\n' "$m"
  exit "$2";;
*)
  echo "unknown mode $mode" >&2; exit 2;;
esac`

// ShellCommand is the argv of j for backends that run commands through
// execve (local, ssh, agent): sh -c SCRIPT MARKER MODE ARGS…
func ShellCommand(j Job) []string {
	switch j.Mode {
	case ModeMissing:
		return []string{MissingProgram, j.Marker}
	case ModeNow:
		return []string{"date", "+%s%N"}
	}
	return append([]string{"sh", "-c", shellScript, j.Marker, string(j.Mode)}, j.Args...)
}

// FuncArgs are the arguments a function-running backend passes to Behave
// for j: MARKER MODE ARGS…
func FuncArgs(j Job) []string {
	return append([]string{j.Marker, string(j.Mode)}, j.Args...)
}

// ExitError is what Behave returns for a job that exits with a status
// other than zero.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// Behave does in Go what ShellCommand's script does, for backends that
// run Go functions: args are FuncArgs, env the run's KEY=VALUE list, out
// its output. It returns ExitError for a status other than zero, and the
// context's cause when ctx ends first. A function cannot ignore SIGTERM,
// so "ignoreterm" is refused.
func Behave(ctx context.Context, args []string, env []string, out io.Writer) error {
	if len(args) < 2 {
		return errors.New("executortest: want MARKER MODE ARGS…")
	}
	m, mode, args := args[0], Mode(args[1]), args[2:]
	switch mode {
	case ModeExit:
		fmt.Fprintf(out, "hello from %s\n::talon progress 40%%\nto stderr\n", m)
		return exitStatus(args)
	case ModeEcho:
		vals := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			vals[k] = v
		}
		i := 0
		for ; i < len(args) && args[i] != "--"; i++ {
			fmt.Fprintf(out, "%s\x00", vals[args[i]])
		}
		if i < len(args) {
			i++
		}
		for _, a := range args[i:] {
			fmt.Fprintf(out, "%s\x00", a)
		}
		return nil
	case ModeBlock:
		if len(args) > 0 && args[0] == "ignoreterm" {
			return errors.New("executortest: a function cannot ignore SIGTERM")
		}
		fmt.Fprintf(out, "ready %s\n", m)
		<-ctx.Done()
		return context.Cause(ctx)
	case ModeNow:
		fmt.Fprintf(out, "%d\n", time.Now().UnixNano())
		return nil
	case ModeRun:
		fmt.Fprintf(out, "started %s\n", m)
		if len(args) < 2 {
			return errors.New("executortest: run wants SECONDS STATUS")
		}
		secs, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		fmt.Fprintf(out, "ended %s\n", m)
		return exitStatus(args[1:])
	}
	return fmt.Errorf("executortest: unknown mode %q", mode)
}

func exitStatus(args []string) error {
	if len(args) == 0 {
		return errors.New("executortest: want an exit status")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	if n != 0 {
		return ExitError{Code: n}
	}
	return nil
}
