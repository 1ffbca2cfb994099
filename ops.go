package talon

import "time"

// Pause is a job's paused state: who paused it, when and why. While a
// job is paused its triggers record their fires as skipped, external
// triggers are refused, and its blocked runs stay blocked (the state
// store refuses to let them enter ready); running runs go on.
type Pause struct {
	Job    string    `json:"job"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Describe is "paused by alice since 2026-11-26T08:00:00Z: disk full",
// the words runs, skips and errors use.
func (p Pause) Describe() string {
	s := "paused by " + p.By + " since " + p.Since.UTC().Format(time.RFC3339)
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	return s
}

// CanMark reports whether an operator may mark a run in state from as to
// by hand: only as succeeded or failed, from any state but running (a
// running run's process would record its own end over the mark: cancel
// it first) and never to the state it is already in. Unlike
// CanTransition it allows a finished run to change its outcome, which is
// what marks are for (a failed run fixed outside Talon).
func CanMark(from, to State) bool {
	if to != StateSucceeded && to != StateFailed {
		return false
	}
	return from.Valid() && from != StateRunning && from != to
}

// AuditEntry is one operation recorded in the audit: who did what to
// which object, when, from where, and how it ended.
type AuditEntry struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor is who the API's authentication said made the request.
	Actor string `json:"actor"`
	// Action is what was asked: trigger, cancel, retry, mark, pause,
	// resume, reload, cancel-runs, retry-runs (the bulk forms).
	Action string `json:"action"`
	// Object is what it was asked of: "job etl", "run 42", or a filter
	// ("runs job=etl state=blocked").
	Object string `json:"object"`
	// Remote is the address the request came from.
	Remote string `json:"remote,omitempty"`
	// Outcome is "ok", or the error code and message the caller got.
	Outcome string `json:"outcome"`
	// Detail says what came of it: the run created, the runs cancelled.
	Detail string `json:"detail,omitempty"`
}

// TriggerRequest is an external trigger of a job (the API's POST
// /api/v1/jobs/{name}/trigger, talon trigger, talon backfill): which
// period, with which params, and an idempotency key. It is vocabulary,
// not a view: the scheduler takes it as it is and the run keeps its
// params and key.
type TriggerRequest struct {
	Period string            `json:"period,omitempty"` // default: the period containing now
	Params map[string]string `json:"params,omitempty"`
	Key    string            `json:"key,omitempty"` // idempotency key
	// Audit, set by the server that took the request (never read from
	// it), is its audit entry: recorded in the transaction that creates
	// the run, with "run ID for PERIOD" as its detail, so the run and its
	// record commit together. When no run is created (the key matched an
	// existing run, or the request failed) nothing is recorded, and the
	// server records what came of it.
	Audit *AuditEntry `json:"-"`
}
