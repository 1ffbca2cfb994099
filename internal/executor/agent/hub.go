package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/store"
)

// This file is the server's side of the agent protocol (api.Agents),
// which the API routes of role agent call. Every answer comes from the
// store, so any scheduler sharing it can serve any agent.

// userError words store errors for the agent: conflicts (a name taken, a
// session gone) and outages keep their message; other errors pass.
func userError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return talon.Errorf(talon.ECONFLICT, "%s", plain(err))
	case errors.Is(err, store.ErrUnavailable):
		return talon.Errorf(talon.EUNAVAILABLE, "the state store is unavailable; try again (%v)", err)
	}
	return err
}

// plain is a store error's message without the sentinel it wraps (whose
// words, "conflict: run is not in the expected state", are about runs).
func plain(err error) string {
	msg := err.Error()
	for _, s := range []error{store.ErrConflict, store.ErrNotFound} {
		msg = strings.TrimSuffix(msg, ": "+s.Error())
	}
	return msg
}

func (x *Executor) leaseAnswer() api.AgentLease {
	return api.AgentLease{LeaseMS: x.cfg.Lease.Milliseconds(), HeartbeatMS: (x.cfg.Lease / 3).Milliseconds()}
}

// Register starts a session of agent name, registered by the token named
// by.
func (x *Executor) Register(ctx context.Context, name, by string, req api.AgentRegister) (api.AgentLease, error) {
	a := store.Agent{Name: name, Session: req.Session, Slots: req.Slots, Labels: req.Labels, Host: req.Host, Version: req.Version, By: by}
	if err := store.CheckAgent(a); err != nil {
		return api.AgentLease{}, talon.Errorf(talon.EINVALID, "%v", err)
	}
	_, lost, err := x.st.RegisterAgent(ctx, a, req.Previous, x.cfg.Lease)
	if err != nil {
		return api.AgentLease{}, userError(err)
	}
	out := x.leaseAnswer()
	for _, r := range lost {
		out.Lost = append(out.Lost, r.RunID)
	}
	if len(lost) > 0 {
		x.log.Warn("agent registered a new session: the runs of its earlier one are lost", "agent", name, "runs", out.Lost)
		x.poke()
	}
	x.log.Info("agent registered", "agent", name, "session", req.Session, "slots", req.Slots, "host", req.Host, "by", by)
	if x.cfg.Changed != nil {
		x.cfg.Changed()
	}
	return out, nil
}

// Heartbeat renews a session's lease; conflict when it is gone.
func (x *Executor) Heartbeat(ctx context.Context, name string, req api.AgentBeat) (api.AgentLease, error) {
	if _, err := x.st.RenewAgent(ctx, name, req.Session, x.cfg.Lease); err != nil {
		return api.AgentLease{}, userError(err)
	}
	return x.leaseAnswer(), nil
}

// Poll answers the session's work: the runs handed to it that it does not
// know, and the cancels of runs it has. Without any, it waits up to
// req.WaitMS for some.
func (x *Executor) Poll(ctx context.Context, name string, req api.AgentPoll) (api.AgentWork, error) {
	wait := min(max(time.Duration(req.WaitMS)*time.Millisecond, 0), api.MaxAgentWait)
	deadline := time.Now().Add(wait)
	woken, stop := x.signals.subscribe(name)
	defer stop()
	known, cancelled := set(req.Known), set(req.Cancelled)
	for {
		w, err := x.work(ctx, name, req.Session, known, cancelled)
		if err != nil || len(w.Runs) > 0 || len(w.Cancel) > 0 {
			return w, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return w, nil
		}
		t := time.NewTimer(min(left, x.cfg.Poll))
		select {
		case <-ctx.Done():
			t.Stop()
			return w, nil
		case <-x.stop:
			t.Stop()
			return w, nil
		case <-woken:
		case <-t.C:
		}
		t.Stop()
	}
}

func set(ids []int64) map[int64]bool {
	m := make(map[int64]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// work is the session's work now, or a conflict when the session is
// gone.
func (x *Executor) work(ctx context.Context, name, session string, known, cancelled map[int64]bool) (api.AgentWork, error) {
	var w api.AgentWork
	agents, dbNow, err := x.st.Agents(ctx)
	if err != nil {
		return w, userError(err)
	}
	live := false
	for _, a := range agents {
		if a.Name == name && a.Session == session && a.Live(dbNow) {
			live = true
		}
	}
	if !live {
		return w, talon.Errorf(talon.ECONFLICT, "session %s of agent %s is gone (its lease ran out, or another session registered): register again", session, name)
	}
	open, err := x.st.AgentRuns(ctx, store.AgentRunFilter{Agent: name, Open: true})
	if err != nil {
		return w, userError(err)
	}
	var take []int64
	for _, r := range open {
		if r.Session != session {
			continue
		}
		if r.State == store.AgentOffered || r.State == store.AgentTaken && !known[r.RunID] {
			take = append(take, r.RunID)
		}
		if r.Cancel != "" && known[r.RunID] && !cancelled[r.RunID] {
			w.Cancel = append(w.Cancel, api.AgentCancel{Run: r.RunID, Reason: r.Cancel})
		}
	}
	if len(take) == 0 {
		return w, nil
	}
	taken, err := x.st.TakeAgentRuns(ctx, name, session, take)
	if err != nil {
		return w, userError(err)
	}
	for _, r := range taken {
		var spec api.AgentRunSpec
		if err := json.Unmarshal(r.Spec, &spec); err != nil {
			return w, fmt.Errorf("run %d handed to agent %s: %w", r.RunID, name, err)
		}
		w.Runs = append(w.Runs, spec)
	}
	return w, nil
}

// Report applies an agent's report on one of its runs: its start, a
// piece of its output, its end.
func (x *Executor) Report(ctx context.Context, name string, runID int64, req api.AgentReport) (api.AgentReported, error) {
	unlock := x.reports.lock(runID)
	defer unlock()
	var out api.AgentReported
	rs, err := x.st.AgentRuns(ctx, store.AgentRunFilter{IDs: []int64{runID}})
	if err != nil {
		return out, userError(err)
	}
	if len(rs) == 0 || rs[0].Agent != name || rs[0].Session != req.Session {
		return out, talon.Errorf(talon.ECONFLICT, "run %d is not a run of session %s of agent %s", runID, req.Session, name)
	}
	ar := rs[0]
	defer x.poke()
	if req.Started != nil && ar.Open() {
		ar, err = x.st.StartAgentRun(ctx, runID, req.Session, req.Started.PID)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return out, userError(err)
		}
	}
	if req.Output != nil {
		n, err := x.output(ctx, ar, req.Output)
		if err != nil {
			return out, err
		}
		out.Output = n
	}
	if req.Ended != nil && ar.Open() {
		ar, err = x.st.EndAgentRun(ctx, runID, req.Session, store.AgentOutcome{
			Succeeded: req.Ended.Succeeded, ExitCode: req.Ended.ExitCode, Reason: req.Ended.Reason,
			Ago: time.Duration(req.Ended.AgoMS) * time.Millisecond,
		})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return out, userError(err)
		}
		x.reports.forget(runID)
		return out, nil
	}
	if !ar.Open() && req.Ended == nil {
		// Ended on this side before the agent said so: withdrawn or lost.
		out.Stop = ar.Reason
		x.reports.forget(runID)
	}
	return out, nil
}

// output stores what of o the run's log lacks, and returns how much of
// the agent's output the server has. The log store (the state store:
// every scheduler reads it, and the process that started the run follows
// it for "::talon" lines) keeps the first LogLimit bytes, then a note;
// the agent's offsets are the stored log's up to there, so a piece sent
// again stores nothing twice. The run's log file on this host (LogPath)
// gets a copy, as the local executor's file does.
func (x *Executor) output(ctx context.Context, ar store.AgentRun, o *api.AgentOutput) (int64, error) {
	end := o.Offset + int64(len(o.Data))
	if x.cfg.LogPath != nil {
		if err := x.copyToFile(ar, o); err != nil {
			x.log.Warn("agent run's log file", "run", ar.RunID, "err", err)
		}
	}
	size, err := x.st.LogSize(ctx, ar.RunID)
	if err != nil {
		return 0, userError(err)
	}
	limit := x.logLimit()
	switch {
	case size >= limit:
		return end, nil // the store keeps no more; the agent has it all
	case o.Offset > size:
		// The store lacks what comes before: the agent sends again from
		// there (a run the store does not know has no stored log).
		if _, err := x.st.GetRun(ctx, ar.RunID); errors.Is(err, store.ErrNotFound) {
			return end, nil
		}
		return size, nil
	}
	data := o.Data[min(size-o.Offset, int64(len(o.Data))):]
	full := false
	if room := limit - size; int64(len(data)) > room {
		data, full = data[:room], true
	}
	if err := x.st.AppendLog(ctx, ar.RunID, size, data); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return end, nil
		}
		return 0, userError(err)
	}
	if full {
		note := fmt.Sprintf("\n[talon: this run's output passed %d bytes; the state store keeps no more of it; the whole output is on agent %s, in its directory's logs/%s/%d.log]\n",
			limit, ar.Agent, ar.Job, ar.RunID)
		if err := x.st.AppendLog(ctx, ar.RunID, limit, []byte(note)); err != nil {
			return 0, userError(err)
		}
	}
	return end, nil
}

func (x *Executor) logLimit() int64 {
	if x.cfg.LogLimit > 0 {
		return x.cfg.LogLimit
	}
	return executor.DefaultLogLimit
}

// copyToFile appends what of o the run's log file on this host lacks.
// The path is the run's, from its id and job as the store has them,
// never from the request.
func (x *Executor) copyToFile(ar store.AgentRun, o *api.AgentOutput) error {
	path := x.cfg.LogPath(talon.Run{ID: ar.RunID, Job: ar.Job})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	// The file stays a prefix of the run's output, as the stored log is
	// (a scheduler restarting here stores what the file has past it):
	// output that reached another scheduler first leaves a gap here, and
	// what follows it is not copied.
	skip := fi.Size() - o.Offset
	if skip < 0 {
		return nil
	}
	data := o.Data[min(skip, int64(len(o.Data))):]
	if len(data) == 0 {
		return nil
	}
	_, err = f.Write(data)
	return err
}

// signals wakes the long polls of an agent.
type signals struct {
	mu sync.Mutex
	by map[string]*store.Broadcast
}

func (s *signals) get(name string) *store.Broadcast {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]*store.Broadcast{}
	}
	b := s.by[name]
	if b == nil {
		b = &store.Broadcast{}
		s.by[name] = b
	}
	return b
}

func (s *signals) subscribe(name string) (<-chan struct{}, func()) { return s.get(name).Subscribe() }
func (s *signals) wake(name string)                                { s.get(name).Wake() }

// reportLocks serializes the reports of one run: an agent that sends a
// report again while the first is in flight must not append its output
// twice.
type reportLocks struct {
	mu    sync.Mutex
	locks map[int64]*sync.Mutex
}

func (r *reportLocks) lock(runID int64) func() {
	r.mu.Lock()
	if r.locks == nil {
		r.locks = map[int64]*sync.Mutex{}
	}
	l := r.locks[runID]
	if l == nil {
		l = &sync.Mutex{}
		r.locks[runID] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// forget drops a run that ended. A report that still holds its lock
// keeps its mutex; a later one makes a new one, which is harmless: the
// run has ended and its output is complete.
func (r *reportLocks) forget(runID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.locks, runID)
}
