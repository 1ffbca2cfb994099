package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
)

func parseKey(key string, j *schedule.Job) (talon.Period, error) {
	l := time.UTC
	if j != nil {
		l = j.Location
	}
	return calendar.ParseKey(key, l)
}

// reapOthers looks for ready and running runs whose owner is dead, by the
// lease rules in lease.go: a scheduler on this host whose process no
// longer exists (noticed at once, e.g. after a SIGKILL and restart), or
// any scheduler whose heartbeat is older than the lease by the database's
// clock while this one has been connected for a whole lease. Each such
// run is re-attached through its executor when possible, else failed
// with reason "lost: …", and then retries apply.
func (e *Engine) reapOthers(ctx context.Context, p *plan, now time.Time) error {
	runs, err := e.st.ListRuns(ctx, store.RunFilter{States: []talon.State{talon.StateReady, talon.StateRunning}})
	if err != nil {
		return err
	}
	insts, err := e.st.Instances(ctx)
	if err != nil {
		return err
	}
	dbNow, err := e.heartbeat(ctx, now)
	if err != nil {
		return err
	}
	connected := e.connectedFor(now)
	byID := map[string]store.Instance{}
	for _, in := range insts {
		byID[in.ID] = in
	}
	owns := map[string]bool{}
	for _, r := range runs {
		owns[r.Owner] = true
	}
	for _, in := range insts {
		if dead, _ := e.judge(in, dbNow, connected); dead && !owns[in.ID] {
			e.buried.Store(in.ID, in.Heartbeat)
		}
	}
	if len(runs) == 0 {
		return nil
	}
	dead := func(owner string) (bool, string) {
		if owner == e.instance.ID {
			return false, ""
		}
		in, ok := byID[owner]
		if !ok {
			return true, "its scheduler is unknown"
		}
		return e.judge(in, dbNow, connected)
	}
	var ts []store.Transition
	for _, r := range runs {
		isDead, why := dead(r.Owner)
		if !isDead {
			continue
		}
		ex := e.cfg.Executors[r.Executor]
		handle := r.Handle
		// The run's log file is under its owner's log directory when the
		// owner ran on this host (peers on one host each have their
		// own), else under ours (a restart of it).
		dir, here := e.cfg.LogDir, true
		if in, ok := byID[r.Owner]; ok && in.LogDir != "" {
			dir, here = in.LogDir, in.Host == e.instance.Host
		}
		if loc, ok := ex.(executor.Locator); ok && handle == "" {
			// Its scheduler may have started it and died (or froze)
			// before it recorded the start: find it from the run itself,
			// beside its log.
			if !here {
				dir = e.cfg.LogDir
			}
			handle = loc.Locate(r, logPath(dir, r))
		}
		if here {
			// Its scheduler is dead, and what it wrote to the run's log
			// file is all it will: store what it had not stored yet,
			// before the run is re-attached (an executor that goes on
			// with its output continues the stored log) or its end is
			// recorded.
			e.catchUpLog(ctx, r, logPath(dir, r))
		}
		if ex != nil && handle != "" {
			pr, err := e.recoverRun(ctx, p, ex, r, handle, now)
			if err == nil {
				if err := e.adopt(ctx, r, pr, now); err == nil {
					continue
				}
				pr.Cancel(errors.New("could not take ownership"))
			} else if !errors.Is(err, executor.ErrLost) {
				e.log.Warn("recover run", "run", r.ID, "err", err)
			}
		}
		ts = append(ts, store.Transition{
			RunID: r.ID, From: []talon.State{r.State}, To: talon.StateFailed, Now: now,
			Reason: fmt.Sprintf("lost: %s while the run was %s", why, r.State),
		})
	}
	if len(ts) > 0 {
		e.log.Warn("runs lost", "count", len(ts))
	}
	return e.apply(ctx, p, now, ts)
}

// recoverRun re-attaches to run r through its executor: with the spec
// the run would start with now when the executor can carry on with a
// running run's output (executor.Reattacher), else from its handle
// alone.
func (e *Engine) recoverRun(ctx context.Context, p *plan, ex executor.Executor, r talon.Run, handle string, now time.Time) (executor.Process, error) {
	ra, reattaches := ex.(executor.Reattacher)
	if !reattaches {
		return ex.Recover(ctx, r, handle)
	}
	s := executor.Spec{Run: r, LogPath: e.LogPath(r), OnLine: e.onLine(r.ID), Logs: e.st, LogLimit: e.cfg.LogLimit}
	if j := p.jobs[r.Job]; j != nil {
		if js, err := e.spec(r, j); err == nil {
			s = js
		} else {
			// A secret that cannot be read now only costs its masking.
			e.log.Warn("recover run: its spec", "run", r.ID, "err", err)
			s.Job = &j.Job
		}
	}
	s.FenceIn = e.fenceIn(now)
	return ra.Reattach(ctx, s, handle)
}

// adopt takes ownership of a run another scheduler started and that its
// executor could re-attach to.
func (e *Engine) adopt(ctx context.Context, r talon.Run, pr executor.Process, now time.Time) error {
	res, err := e.st.Transition(ctx, []store.Transition{{
		RunID: r.ID, From: []talon.State{r.State}, To: talon.StateRunning, Now: now,
		Owner: e.instance.ID, Handle: pr.Handle(), Reason: "re-attached by scheduler " + e.instance.ID,
	}})
	if err != nil {
		return err
	}
	if res[0].Err != nil {
		return res[0].Err
	}
	pc := &proc{run: r, p: pr, started: now}
	if r.Started != nil {
		pc.started = *r.Started // it may have ended before now
	}
	// A run that goes on (on an agent) keeps its timeout, from its start.
	if j := e.sched.Load().jobs[r.Job]; j != nil && j.Timeout > 0 {
		pc.deadline = pc.started.Add(j.Timeout)
	}
	e.procsMu.Lock()
	e.procs[r.ID] = pc
	e.procsMu.Unlock()
	e.watch(pc)
	return nil
}

// catchUpLog copies into the log store what run r's log file at path
// holds past what the store has: the last batch of output that a
// scheduler that died had written to the file but not stored yet. The
// store's log is a prefix of the file (both get the same masked bytes,
// in order), unless the store's limit cut it, which leaves nothing to
// add. A run without a file here has nothing to add either.
func (e *Engine) catchUpLog(ctx context.Context, r talon.Run, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return
	}
	size, err := e.st.LogSize(ctx, r.ID)
	if err != nil {
		e.log.Warn("catch up a run's log", "run", r.ID, "err", err)
		return
	}
	limit := e.cfg.LogLimit
	if limit <= 0 {
		limit = executor.DefaultLogLimit
	}
	if size >= fi.Size() || size >= limit {
		return
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return
	}
	w := executor.NewLogWriter(e.st, r.ID, size, executor.LogOptions{Limit: limit, Where: path, Logger: e.log})
	_, _ = io.Copy(w, io.LimitReader(f, fi.Size()-size)) // w never fails
	if err := w.Close(); err != nil {
		e.log.Warn("catch up a run's log", "run", r.ID, "err", err)
		return
	}
	e.log.Info("stored the end of a run's log from its file", "run", r.ID, "bytes", fi.Size()-size)
}

func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie (dead, not yet reaped by its parent) answers signal 0 but
	// runs nothing: it is gone.
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}
