package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

// PauseRequest is the body of POST /api/v1/jobs/{name}/pause.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// MarkRequest is the body of POST /api/v1/runs/{id}/mark.
type MarkRequest struct {
	State  talon.State `json:"state"`
	Reason string      `json:"reason"`
}

// BulkRequest is the body of POST /api/v1/runs/cancel and
// /api/v1/runs/retry: a filter of runs, at most MaxBulk of them.
type BulkRequest struct {
	Job    string        `json:"job,omitempty"`
	Period string        `json:"period,omitempty"`
	States []talon.State `json:"states,omitempty"`
	// DryRun lists what would be done, and does nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// BulkResult is the answer of a bulk cancel or retry: what came of each
// run the filter matched, newest first.
type BulkResult struct {
	DryRun  bool       `json:"dry_run,omitempty"`
	Matched int        `json:"matched"`
	Done    int        `json:"done"`
	Skipped int        `json:"skipped"`
	Results []BulkItem `json:"results"`
}

// BulkItem is what came of one run of a bulk operation. Outcome is
// "cancelled", "retried" (Run is the new attempt), "skipped" (Reason says
// why) or, in a dry run, "would cancel" / "would retry".
type BulkItem struct {
	ID      int64       `json:"id"`
	State   talon.State `json:"state"`
	Outcome string      `json:"outcome"`
	Run     int64       `json:"run,omitempty"`
	Reason  string      `json:"reason,omitempty"`
}

// MaxBulk bounds the runs one bulk request may act on; a filter that
// matches more is refused, so that one request stays short and its answer
// lists every run.
const MaxBulk = 1000

// The states each bulk operation acts on, and its default filter.
var (
	cancellable = []talon.State{talon.StateBlocked, talon.StateReady, talon.StateRunning}
	retryable   = []talon.State{talon.StateFailed, talon.StateSkipped}
)

type auditKey struct{}

// auditNote is what a handler adds to its audit entry.
type auditNote struct {
	action, object, detail string
	skip                   bool // a dry run: nothing was done
	// recorded: the operation's own transaction recorded the entry
	// (inTransaction); nothing is left to record unless it failed.
	recorded bool
}

func noteOf(ctx context.Context) *auditNote {
	if n, ok := ctx.Value(auditKey{}).(*auditNote); ok {
		return n
	}
	return &auditNote{} // not audited: notes go nowhere
}

// audited records each request of a route in the audit, after its
// handler: who (Caller), what (action), which object (the run or job of
// the path, or what the handler noted), when, from where and how it
// ended. It is the one place the audit is written; the route table says
// which routes go through it. Requests the Authorizer refused never reach
// it. A failure to record is logged for an operator and does not change
// the answer: the operation has happened.
func (s *Server) audited(action string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		note := &auditNote{action: action}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, note))
		err := h(w, r)
		if note.skip || note.recorded && err == nil {
			return err
		}
		if err == nil {
			// The handler has written its answer: the caller gets it now,
			// not after the audit's own commit. (An error is written after
			// this returns, so nothing is flushed early then.)
			_ = http.NewResponseController(w).Flush()
		}
		a := note.entry(r)
		a.Outcome, a.Detail = outcomeOf(err), note.detail
		// The client may be gone; the record must not be.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if rerr := s.backend.RecordAudit(ctx, a); rerr != nil {
			s.logger.Error("audit not recorded", "action", action, "object", a.Object, "actor", a.Actor, "err", rerr)
		}
		return err
	}
}

// entry is the audit entry of r so far: who, what, which object, from
// where; its outcome "ok" until the handler says otherwise.
func (n *auditNote) entry(r *http.Request) talon.AuditEntry {
	object := n.object
	if object == "" {
		if id := r.PathValue("id"); id != "" {
			object = "run " + id
		} else if name := r.PathValue("name"); name != "" {
			object = "job " + name
		}
	}
	return talon.AuditEntry{
		Actor: Caller(r.Context()), Action: n.action, Object: object,
		Remote: r.RemoteAddr, Outcome: "ok",
	}
}

// inTransaction is the audit entry of a request whose handler has it
// recorded in the transaction of the operation itself (see
// talon.TriggerRequest.Audit), or nil on a route that is not audited.
// The handler then calls recorded when that transaction committed it.
func inTransaction(r *http.Request) *talon.AuditEntry {
	n, ok := r.Context().Value(auditKey{}).(*auditNote)
	if !ok {
		return nil
	}
	a := n.entry(r)
	return &a
}

// outcomeOf is an audit entry's outcome: "ok", or what the caller was told.
func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	var te *talon.Error
	if errors.As(err, &te) && statusOf(te.Code) != http.StatusInternalServerError {
		return te.Code + ": " + te.Message
	}
	return "internal error"
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) error {
	var req PauseRequest
	if err := decode(r, &req, true); err != nil {
		return err
	}
	p, created, err := s.backend.Pause(r.Context(), r.PathValue("name"), Caller(r.Context()), req.Reason)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		noteOf(r.Context()).detail = "already " + p.Describe()
	} else if p.Reason != "" {
		noteOf(r.Context()).detail = p.Reason
	}
	writeJSON(w, status, p)
	return nil
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) error {
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	p, err := s.backend.Resume(r.Context(), r.PathValue("name"), Caller(r.Context()))
	if err != nil {
		return err
	}
	noteOf(r.Context()).detail = "was " + p.Describe()
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) mark(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	var req MarkRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	noteOf(r.Context()).detail = fmt.Sprintf("%s: %s", req.State, req.Reason)
	if req.State != talon.StateSucceeded && req.State != talon.StateFailed {
		return talon.Errorf(talon.EINVALID, "state %q: want succeeded or failed", req.State)
	}
	run, err := s.backend.Mark(r.Context(), id, req.State, req.Reason, Caller(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// bulkCancel cancels the runs a filter matches, each as POST
// /runs/{id}/cancel would.
func (s *Server) bulkCancel(w http.ResponseWriter, r *http.Request) error {
	return s.bulk(w, r, "cancel", cancellable, func(ctx context.Context, run talon.Run, by string) (BulkItem, error) {
		got, err := s.backend.Cancel(ctx, run.ID, by)
		return BulkItem{ID: run.ID, State: got.State, Outcome: "cancelled", Reason: got.Reason}, err
	})
}

// bulkRetry retries the runs a filter matches, each as POST
// /runs/{id}/retry would: a run already retried is skipped.
func (s *Server) bulkRetry(w http.ResponseWriter, r *http.Request) error {
	return s.bulk(w, r, "retry", retryable, func(ctx context.Context, run talon.Run, by string) (BulkItem, error) {
		got, err := s.backend.Retry(ctx, run.ID, by)
		return BulkItem{ID: run.ID, State: run.State, Outcome: "retried", Run: got.ID}, err
	})
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, verb string, allowed []talon.State,
	do func(ctx context.Context, run talon.Run, by string) (BulkItem, error)) error {
	var req BulkRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	note := noteOf(r.Context())
	note.object = "runs " + req.describe()
	note.skip = req.DryRun
	if req.Job == "" && req.Period == "" {
		return talon.Errorf(talon.EINVALID, "name a job or a period (or both): a %s of every run is refused", verb)
	}
	states := req.States
	if len(states) == 0 {
		states = allowed
	}
	for _, st := range states {
		if !st.Valid() {
			return talon.Errorf(talon.EINVALID, "state %q: want one of %s", st, joinStates())
		}
		if !contains(allowed, st) {
			return talon.Errorf(talon.EINVALID, "state %s: only %s runs can be %s", st, listStates(allowed), pastOf(verb))
		}
	}
	runs, err := s.backend.Runs(r.Context(), view.RunFilter{Job: req.Job, Period: req.Period, States: states, Limit: MaxBulk + 1})
	if err != nil {
		return err
	}
	if len(runs) > MaxBulk {
		return talon.Errorf(talon.EINVALID, "more than %d runs match %s; at most %d are %s per request: narrow the filter (a period)", MaxBulk, req.describe(), MaxBulk, pastOf(verb))
	}
	out := BulkResult{DryRun: req.DryRun, Matched: len(runs), Results: make([]BulkItem, len(runs))}
	if req.DryRun {
		for i, run := range runs {
			out.Results[i] = BulkItem{ID: run.ID, State: run.State, Outcome: "would " + verb}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	// A few at a time: cancelling a running run waits for its process to
	// stop (up to the executor's grace), and those waits overlap.
	by := Caller(r.Context())
	errs := make([]error, len(runs))
	sem := make(chan struct{}, bulkParallel)
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out.Results[i], errs[i] = do(r.Context(), run, by)
		}()
	}
	wg.Wait()
	var failed error
	for i, run := range runs {
		var te *talon.Error
		switch err := errs[i]; {
		case err == nil:
			out.Done++
		case errors.As(err, &te) && te.Code != talon.EUNAVAILABLE && te.Code != talon.EINTERNAL:
			// This run changed meanwhile, or cannot be; the others go on.
			out.Results[i] = BulkItem{ID: run.ID, State: run.State, Outcome: "skipped", Reason: te.Message}
			out.Skipped++
		default:
			out.Results[i] = BulkItem{ID: run.ID, State: run.State, Outcome: "error"}
			if failed == nil {
				failed = err
			}
		}
	}
	note.detail = bulkDetail(out, verb)
	if failed != nil {
		// The store went away midway: the caller learns that, and the
		// audit what was done.
		return failed
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// bulkParallel bounds the runs one bulk request acts on at once.
const bulkParallel = 8

// describe is the filter as the audit and errors show it.
func (b BulkRequest) describe() string {
	var parts []string
	if b.Job != "" {
		parts = append(parts, "job="+b.Job)
	}
	if b.Period != "" {
		parts = append(parts, "period="+b.Period)
	}
	if len(b.States) > 0 {
		parts = append(parts, "state="+listStates(b.States))
	}
	if len(parts) == 0 {
		return "(no filter)"
	}
	return strings.Join(parts, " ")
}

// bulkDetail sums up a bulk operation for the audit, naming the runs done
// (up to a bound: the audit is for people).
func bulkDetail(out BulkResult, verb string) string {
	const maxNamed = 50
	var done []string
	for _, it := range out.Results {
		if it.Outcome != "skipped" && it.Outcome != "error" && len(done) < maxNamed {
			done = append(done, strconv.FormatInt(it.ID, 10))
		}
	}
	s := fmt.Sprintf("%s %d of %d, skipped %d", pastOf(verb), out.Done, out.Matched, out.Skipped)
	if len(done) > 0 {
		s += ": runs " + strings.Join(done, ", ")
		if out.Done > len(done) {
			s += ", …"
		}
	}
	return s
}

func pastOf(verb string) string {
	if verb == "cancel" {
		return "cancelled"
	}
	return "retried"
}

func contains(ss []talon.State, s talon.State) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func listStates(ss []talon.State) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

// audit serves GET /api/v1/audit: newest first, paginated like runs.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "since", "actor", "before", "limit"); err != nil {
		return err
	}
	f := view.AuditFilter{Actor: q.Get("actor")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return talon.Errorf(talon.EINVALID, "since %q: want an RFC 3339 time, e.g. 2026-11-26T08:00:00Z", v)
		}
		f.Since = t
	}
	if v := q.Get("before"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return talon.Errorf(talon.EINVALID, "before %q: want an audit entry id (a positive integer)", v)
		}
		f.BeforeID = id
	}
	limit, err := limitParam(q)
	if err != nil {
		return err
	}
	f.Limit = limit
	entries, err := s.backend.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	if len(entries) == limit {
		setNext(w, r, strconv.FormatInt(entries[len(entries)-1].ID, 10))
	}
	writeJSON(w, http.StatusOK, nonNil(entries))
	return nil
}

// setNext sends the Link header of the next page of a list: the same
// query with before set to the cursor, so clients page without knowing
// how the list is ordered.
func setNext(w http.ResponseWriter, r *http.Request, before string) {
	next := r.URL.Query()
	next.Set("before", before)
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
}

// Mark sets a run's outcome by hand.
func (c *Client) Mark(ctx context.Context, id int64, state talon.State, reason, by string) (talon.Run, error) {
	var out talon.Run
	_, err := c.doAs(ctx, by, http.MethodPost, runPath(id, "mark"), nil, MarkRequest{State: state, Reason: reason}, &out)
	return out, err
}

// Pause pauses a job; created is false when it was already paused.
func (c *Client) Pause(ctx context.Context, job, by, reason string) (talon.Pause, bool, error) {
	var out talon.Pause
	status, err := c.doAs(ctx, by, http.MethodPost, "jobs/"+url.PathEscape(job)+"/pause", nil, PauseRequest{Reason: reason}, &out)
	return out, status == http.StatusCreated, err
}

// Resume ends a job's pause.
func (c *Client) Resume(ctx context.Context, job, by string) (talon.Pause, error) {
	var out talon.Pause
	_, err := c.doAs(ctx, by, http.MethodPost, "jobs/"+url.PathEscape(job)+"/resume", nil, nil, &out)
	return out, err
}

// BulkCancel cancels the runs a filter matches.
func (c *Client) BulkCancel(ctx context.Context, req BulkRequest) (BulkResult, error) {
	var out BulkResult
	_, err := c.do(ctx, http.MethodPost, "runs/cancel", nil, req, &out)
	return out, err
}

// BulkRetry retries the runs a filter matches.
func (c *Client) BulkRetry(ctx context.Context, req BulkRequest) (BulkResult, error) {
	var out BulkResult
	_, err := c.do(ctx, http.MethodPost, "runs/retry", nil, req, &out)
	return out, err
}

// Audit lists the audit, newest first; a zero Limit means the server's
// default (100).
func (c *Client) Audit(ctx context.Context, f view.AuditFilter) ([]talon.AuditEntry, error) {
	q := url.Values{}
	set(q, "actor", f.Actor)
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if f.BeforeID > 0 {
		q.Set("before", strconv.FormatInt(f.BeforeID, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []talon.AuditEntry
	_, err := c.do(ctx, http.MethodGet, "audit", q, nil, &out)
	return out, err
}

// RecordAudit is the server's to do: it records every operation it
// serves, and no client may write the audit.
func (c *Client) RecordAudit(ctx context.Context, a talon.AuditEntry) error {
	return talon.Errorf(talon.EINVALID, "the audit is written by the server, not through the API")
}
