package local

import (
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/talonhq/talon/internal/executor"
)

// startDirect starts the command as the scheduler's own child, without a
// supervisor: where there is no subreaper to find escaped descendants
// and no socket to notice the scheduler's death.
func (e *Executor) startDirect(s executor.Spec, cmd *exec.Cmd, out *executor.Output, log *slog.Logger) (executor.Process, error) {
	cmd.Env = environ(s)
	cmd.Dir = s.Job.Dir
	setSysProcAttr(cmd)
	cmd.WaitDelay = e.waitDelay()
	if out != nil {
		// One writer for both streams makes exec share one pipe, so the
		// log keeps the order in which the command wrote.
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &directProcess{
		cmd:   cmd,
		out:   out,
		grace: e.grace(),
		log:   log.With("pid", cmd.Process.Pid),
		done:  make(chan struct{}),
	}
	p.log.Debug("process started")
	go p.wait()
	return p, nil
}

// directProcess is a command started without a supervisor.
type directProcess struct {
	cmd   *exec.Cmd
	out   *executor.Output
	grace time.Duration
	log   *slog.Logger

	done    chan struct{}
	outcome executor.Outcome

	mu       sync.Mutex
	cause    error // set by the first Cancel before the end
	finished bool
}

func (p *directProcess) Handle() string { return handle{pid: p.cmd.Process.Pid}.String() }

func (p *directProcess) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

func (p *directProcess) wait() {
	err := p.cmd.Wait()
	_ = p.out.Close() // the store keeps trying by itself
	p.mu.Lock()
	p.finished = true
	cause := p.cause
	p.mu.Unlock()

	o := executor.Outcome{ExitCode: -1}
	st := p.cmd.ProcessState
	switch {
	case st == nil:
		o.Reason = fmt.Sprintf("wait: %v", err)
	case st.Exited():
		o.ExitCode = st.ExitCode()
		o.Succeeded = o.ExitCode == 0
		o.Reason = "exit status " + strconv.Itoa(o.ExitCode)
	default:
		o.Reason = signalReason(st)
	}
	p.outcome = finish(o, cause, p.out, p.log)
	close(p.done)
}

// finish applies a cancel's cause to an outcome and logs the end.
func finish(o executor.Outcome, cause error, out *executor.Output, log *slog.Logger) executor.Outcome {
	if cause != nil {
		// A cancelled run failed, even if it exited cleanly on SIGTERM:
		// the user asked for it to stop, not to finish.
		o.Succeeded = false
		o.Reason = cause.Error()
	}
	if werr := out.Err(); werr != nil {
		log.Warn("run log incomplete", "err", werr)
	}
	log.Debug("process ended", "reason", o.Reason)
	return o
}

// Cancel sends SIGTERM to the run's process group and SIGKILL after the
// grace period. The cause becomes the outcome's reason, unless the
// command had already ended.
func (p *directProcess) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.mu.Lock()
	if p.finished || p.cause != nil {
		p.mu.Unlock()
		return
	}
	p.cause = cause
	p.mu.Unlock()

	pgid := p.cmd.Process.Pid
	if err := signalGroup(pgid, sigTerm); err != nil {
		p.log.Warn("terminate process group", "err", err)
	}
	// The timer is not stopped when the leader exits: children that
	// ignore SIGTERM belong to the run too. The group id cannot be reused
	// while any of them lives, so the late signal only reaches the run.
	time.AfterFunc(p.grace, func() {
		if err := signalGroup(pgid, sigKill); err != nil && !isNoProcess(err) {
			p.log.Warn("kill process group", "err", err)
		}
	})
}
