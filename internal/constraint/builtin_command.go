package constraint

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/suggest"
)

func init() {
	Register("command", newCommand)
}

// Exit codes of a sensor command. 75 is EX_TEMPFAIL of sysexits.h ("try
// again later"), which is what a block means; 76 is the next free code.
const (
	sensorBlock  = 75
	sensorCancel = 76
)

// Defaults and bounds of a sensor.
const (
	defaultSensorTimeout = time.Minute
	// A sensor answers a question; one that needs more than an hour to do
	// so is stuck, and one given less than a second never gets to answer.
	minSensorTimeout = time.Second
	maxSensorTimeout = time.Hour
	maxReasonLen     = 200
	// maxSensorOutput bounds what is kept of a sensor's output: only its
	// first line matters, and a chatty sensor must not fill memory.
	maxSensorOutput = 64 << 10
)

// command is a sensor: it runs a program (argv, never a shell line) and
// maps its exit status to an action — 0 pass, 75 block, 76 cancel, any
// other fail — with the first line of its stdout as the reason. A program
// that cannot start, or runs past its timeout, fails the run: a broken
// sensor should be seen, not waited on. The sensor sees the environment
// of the scheduler plus TALON_JOB, TALON_PERIOD and TALON_RUN_ID.
type command struct {
	argv    []string
	timeout time.Duration
}

const commandWant = `a list of arguments like [test, -e, /data/ready], or {argv: [...], timeout: 30s}`

func newCommand(v any) (Constraint, error) {
	c := command{timeout: defaultSensorTimeout}
	var argv any = v
	switch v := v.(type) {
	case string:
		return nil, fmt.Errorf("command: want a list of arguments, got the string %s (Talon runs no shell; write [sh, -c, %s] if you need one)", suggest.Quote(v), suggest.Quote(v))
	case map[string]any:
		if err := checkKeys("command", v, "argv", "timeout"); err != nil {
			return nil, err
		}
		var ok bool
		if argv, ok = v["argv"]; !ok {
			return nil, fmt.Errorf("command: missing \"argv\" (want %s)", commandWant)
		}
		if t, ok := v["timeout"]; ok {
			d, ok := asDuration(t)
			if !ok || d < minSensorTimeout || d > maxSensorTimeout {
				return nil, wantError("command: timeout", "a duration from 1s to 1h, like \"30s\"", t)
			}
			c.timeout = d
		}
	}
	list, ok := argv.([]any)
	if !ok {
		return nil, wantError("command", commandWant, argv)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("command: want at least the program to run, got an empty list")
	}
	for i, a := range list {
		s, ok := a.(string)
		if !ok {
			// YAML reads [sleep, 5] as a string and an int; a number is
			// as good as its text in an argv.
			if n, isInt := asInt(a); isInt {
				s = strconv.Itoa(n)
			} else {
				return nil, wantError(fmt.Sprintf("command[%d]", i), "a string", a)
			}
		}
		c.argv = append(c.argv, s)
	}
	if c.argv[0] == "" {
		return nil, fmt.Errorf("command: want a program name, got an empty string")
	}
	return c, nil
}

func (command) Name() string { return "command" }

// Slow: a sensor is a process, which may run up to its timeout.
func (command) Slow() bool { return true }

func (c command) Check(ctx context.Context, in Input) Answer {
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(),
		"TALON_JOB="+runJob(in),
		"TALON_PERIOD="+runPeriod(in),
		"TALON_RUN_ID="+strconv.FormatInt(in.Run.ID, 10),
	)
	if in.Job != nil && in.Job.Dir != "" {
		cmd.Dir = in.Job.Dir
	}
	stdout := &limitedBuffer{max: maxSensorOutput}
	stderr := &limitedBuffer{max: maxSensorOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// The sensor may start children; on timeout the whole group goes,
	// and WaitDelay stops a child holding our pipes from hanging Wait.
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		// The engine is stopping, not the sensor misbehaving: leave the
		// run blocked for the next scheduler to check.
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("check of %s interrupted: %v", c.argv[0], context.Cause(ctx))}
	case tctx.Err() != nil:
		return Answer{Action: talon.ActionFail, Reason: fmt.Sprintf("%s timed out after %s", c.argv[0], c.timeout)}
	case cmd.ProcessState == nil:
		// It never started: a missing program, a bad directory.
		return Answer{Action: talon.ActionFail, Reason: fmt.Sprintf("start %s: %v", c.argv[0], err)}
	}
	code := cmd.ProcessState.ExitCode()
	reason := firstLine(stdout.Bytes())
	if reason == "" {
		if code == -1 {
			reason = cmd.ProcessState.String() // "signal: killed"
		} else {
			reason = "exit status " + strconv.Itoa(code)
		}
		if code != 0 && code != sensorBlock && code != sensorCancel {
			if e := firstLine(stderr.Bytes()); e != "" {
				reason += ": " + e
			}
		}
	}
	switch code {
	case 0:
		return Answer{Action: talon.ActionPass, Reason: reason}
	case sensorBlock:
		return Answer{Action: talon.ActionBlock, Reason: reason}
	case sensorCancel:
		return Answer{Action: talon.ActionCancel, Reason: reason}
	}
	return Answer{Action: talon.ActionFail, Reason: reason}
}

// firstLine is the first non-empty line of b, trimmed and capped, with
// invalid UTF-8 replaced so a reason is always printable.
func firstLine(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxSensorOutput)
	for sc.Scan() {
		line := strings.TrimSpace(strings.ToValidUTF8(sc.Text(), "\uFFFD"))
		if line == "" {
			continue
		}
		if r := []rune(line); len(r) > maxReasonLen {
			line = string(r[:maxReasonLen-1]) + "…"
		}
		return line
	}
	return ""
}

// limitedBuffer keeps the first max bytes written and discards the rest
// without failing the writer, so the sensor is never killed by SIGPIPE.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) Bytes() []byte { return l.buf.Bytes() }
