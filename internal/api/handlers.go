package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
	"github.com/talonhq/talon/internal/view"
)

// Limits of list routes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ArtifactRequest is the body of POST /api/v1/runs/{id}/artifacts.
type ArtifactRequest struct {
	URL string `json:"url"`
	// Name is optional; see talon.Artifact.
	Name string `json:"name,omitempty"`
}

// ReloadResult is the answer of POST /api/v1/reload.
type ReloadResult struct {
	Summary string `json:"summary"`
}

// Health is the answer of GET /api/v1/healthz when all is well.
type Health struct {
	Status string `json:"status"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if err := s.backend.Health(r.Context()); err != nil {
		var te *talon.Error
		if _, known := PrincipalOf(r.Context()); !known && errors.As(err, &te) && te.Code == talon.EUNAVAILABLE {
			// Healthz is public: a caller without a token learns that
			// the server is not well, not where its database is.
			return talon.Errorf(talon.EUNAVAILABLE, "unavailable (send a token to learn why)")
		}
		return err
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	jobs, err := s.backend.Jobs(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(jobs))
	return nil
}

func (s *Server) resources(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	v, err := s.backend.Resources(r.Context())
	if err != nil {
		return err
	}
	v.Resources, v.Waiters = nonNil(v.Resources), nonNil(v.Waiters)
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) runs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "job", "period", "state", "before", "limit"); err != nil {
		return err
	}
	f := view.RunFilter{Job: q.Get("job"), Period: q.Get("period")}
	for _, v := range q["state"] {
		for st := range strings.SplitSeq(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !talon.State(st).Valid() {
				return talon.Errorf(talon.EINVALID, "state %q: want one of %s", st, joinStates())
			}
			f.States = append(f.States, talon.State(st))
		}
	}
	if v := q.Get("before"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return talon.Errorf(talon.EINVALID, "before %q: want a run id (a positive integer)", v)
		}
		f.BeforeID = id
	}
	limit, err := limitParam(q)
	if err != nil {
		return err
	}
	f.Limit = limit
	runs, err := s.backend.Runs(r.Context(), f)
	if err != nil {
		return err
	}
	// A full page may have a next one: say where it starts.
	if len(runs) == limit && limit > 0 {
		setNext(w, r, strconv.FormatInt(runs[len(runs)-1].ID, 10))
	}
	writeJSON(w, http.StatusOK, nonNil(runs))
	return nil
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	d, err := s.backend.Run(r.Context(), id)
	if err != nil {
		return err
	}
	d.Decisions = nonNil(d.Decisions)
	d.Events = nonNil(d.Events)
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) periods(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "job", "before", "limit"); err != nil {
		return err
	}
	limit, err := limitParam(q)
	if err != nil {
		return err
	}
	rows, err := s.backend.Periods(r.Context(), view.PeriodFilter{Job: q.Get("job"), Before: q.Get("before"), Limit: limit})
	if err != nil {
		return err
	}
	// The limit counts periods; a full page may have a next one, which
	// starts before its last period.
	if n := countPeriods(rows); n == limit && limit > 0 {
		setNext(w, r, rows[len(rows)-1].Period)
	}
	for i := range rows {
		if rows[i].Counts == nil {
			rows[i].Counts = map[talon.State]int{}
		}
	}
	writeJSON(w, http.StatusOK, nonNil(rows))
	return nil
}

func countPeriods(rows []view.PeriodInfo) int {
	n := 0
	for i, p := range rows {
		if i == 0 || p.Period != rows[i-1].Period {
			n++
		}
	}
	return n
}

// PeriodRange is the answer of GET /api/v1/jobs/{name}/periods.
type PeriodRange struct {
	Job     string   `json:"job"`
	Periods []string `json:"periods"`
}

func (s *Server) jobPeriods(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to"); err != nil {
		return err
	}
	from, to := q.Get("from"), q.Get("to")
	if from == "" || to == "" {
		return talon.Errorf(talon.EINVALID, "want both from and to period keys, e.g. ?from=daily/2026-11-01&to=daily/2026-11-30")
	}
	job := r.PathValue("name")
	keys, err := s.backend.PeriodRange(r.Context(), job, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PeriodRange{Job: job, Periods: nonNil(keys)})
	return nil
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) error {
	var req talon.TriggerRequest
	if err := decode(r, &req, true); err != nil {
		return err
	}
	// The run and its audit entry commit together, in one round trip:
	// the caller's next request on this connection waits for no second
	// commit.
	req.Audit = inTransaction(r)
	run, created, err := s.backend.Trigger(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	note := noteOf(r.Context())
	if created {
		status = http.StatusCreated
		note.recorded = req.Audit != nil
	} else {
		note.detail = fmt.Sprintf("existing run %d for %s (key %s)", run.ID, run.Period, run.Key)
	}
	w.Header().Set("Location", fmt.Sprintf("%sruns/%d", Prefix, run.ID))
	writeJSON(w, status, run)
	return nil
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	run, err := s.backend.Cancel(r.Context(), id, Caller(r.Context()))
	if err != nil {
		return err
	}
	noteOf(r.Context()).detail = fmt.Sprintf("%s: %s", run.State, run.Reason)
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	run, err := s.backend.Retry(r.Context(), id, Caller(r.Context()))
	if err != nil {
		return err
	}
	noteOf(r.Context()).detail = fmt.Sprintf("new run %d (attempt %d)", run.ID, run.Attempt)
	w.Header().Set("Location", fmt.Sprintf("%sruns/%d", Prefix, run.ID))
	writeJSON(w, http.StatusCreated, run)
	return nil
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if err := onlyParams(q, "follow"); err != nil {
		return err
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			return talon.Errorf(talon.EINVALID, "follow %q: want true or false", v)
		}
	}
	if follow {
		return s.followLog(w, r, id)
	}
	rc, err := s.backend.Logs(r.Context(), id)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sw := s.streamWriter(w)
	if _, err := io.Copy(sw, rc); err != nil && !sw.wrote {
		return fmt.Errorf("read log of run %d: %w", id, err)
	} else if err != nil {
		// The status is sent; all we can do is stop and say so in the log.
		s.logger.Warn("log stream ended early", "run", id, "err", err)
	}
	return nil
}

// Log following polls the log: it grows by appends (the executor stores
// a batch of output every fraction of a second, from whichever scheduler
// runs the run), and a poll costs one read at its end. The interval
// starts short, so a chatty run streams at once, and grows while the log
// is quiet, up to a bound: how late a quiet run's next line may show.
// The run's end comes from the event feed, at once (without a feed, the
// run is polled at the same pace).
const (
	followPollMin = 50 * time.Millisecond
	followPollMax = 250 * time.Millisecond
)

// followLog streams a run's log while the run is not finished: what is
// there, then what is appended, until the run has reached a terminal
// state and the log is drained. The executor stores a run's last output
// before the run is recorded finished, so a read to the end after the
// terminal state is seen has it all. A run that has not started yet has
// no log; the stream waits for it. While the state store is away the
// stream waits too, and reads on when it is back.
func (s *Server) followLog(w http.ResponseWriter, r *http.Request, id int64) error {
	ctx := r.Context()
	// Subscribed before the run is read, so its end cannot fall between.
	ended := s.watchEnd(ctx, id)
	defer ended.stop()
	d, err := s.backend.Run(ctx, id)
	if err != nil {
		return err
	}
	finished := d.State.Terminal()
	var rc io.ReadCloser
	open := func() error {
		f, err := s.backend.Logs(ctx, id)
		var te *talon.Error
		if errors.As(err, &te) && te.Code == talon.ENOTFOUND && !finished {
			return nil // not started yet: no log so far
		}
		if err != nil {
			return err
		}
		rc = f
		return nil
	}
	if err := open(); err != nil {
		return err
	}
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	sw := s.streamWriter(w)
	// The stream lasts as long as the run: lift the server's deadlines for
	// the whole request (each write gets its own, in streamWriter). The
	// read deadline matters too: when it passes, net/http cancels the
	// request's context.
	_ = sw.rc.SetReadDeadline(time.Time{})
	_ = sw.rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if err := sw.flush(); err != nil {
		return nil // the client is gone
	}

	wait := followPollMin
	timer := time.NewTimer(wait)
	timer.Stop()
	defer timer.Stop()
	for {
		away := false // the store is: the log is not drained yet
		if rc != nil {
			n, err := io.Copy(sw, rc)
			var te *talon.Error
			if err != nil && !sw.failed && errors.As(err, &te) && te.Code == talon.EUNAVAILABLE && ctx.Err() == nil {
				// Read on from there once it is back.
				s.logger.Debug("follow log: store unavailable", "run", id, "err", err)
				err, away = nil, true
			}
			if err != nil {
				if sw.failed {
					return nil // the client is gone or stopped reading
				}
				s.logger.Warn("log stream ended early", "run", id, "err", err)
				panic(http.ErrAbortHandler) // cut the stream: the client must not take it for the end of the run
			}
			if n > 0 {
				wait = followPollMin
			}
		}
		if finished && !away {
			return nil
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			// The server is shutting down while the run goes on: end the
			// stream abruptly, so the client reports it cut short.
			panic(http.ErrAbortHandler)
		case <-ended.c:
			finished = true // drain the log, then end
		case <-timer.C:
		}
		wait = min(wait*2, followPollMax)
		if !finished && !ended.live() {
			d, err := s.backend.Run(ctx, id)
			switch {
			case err == nil:
				finished = d.State.Terminal()
			case ctx.Err() != nil:
				return nil
			default:
				// The store is away: keep following, and ask again later.
				s.logger.Debug("follow log: run state unknown", "run", id, "err", err)
			}
		}
		if rc == nil {
			if err := open(); err != nil {
				s.logger.Warn("follow log: open", "run", id, "err", err)
			}
		}
	}
}

// streamWriter writes a streamed answer: it flushes each chunk so the
// client sees lines as they come, and bounds each write by the server's
// write timeout rather than the whole answer by it.
func (s *Server) streamWriter(w http.ResponseWriter) *flushWriter {
	return &flushWriter{w: w, rc: http.NewResponseController(w), timeout: s.writeTimeout}
}

type flushWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	wrote   bool
	failed  bool // a write to the client failed
}

func (f *flushWriter) Write(p []byte) (int, error) {
	if f.timeout > 0 {
		_ = f.rc.SetWriteDeadline(time.Now().Add(f.timeout))
	}
	n, err := f.w.Write(p)
	f.wrote = true
	if err == nil {
		err = f.flush()
	}
	if f.timeout > 0 {
		// Idle between writes is not a stuck client: lift the deadline,
		// or the stream's last chunk, long after, would fail on it.
		_ = f.rc.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		f.failed = true
	}
	return n, err
}

func (f *flushWriter) flush() error {
	err := f.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil // a writer that cannot flush still gets the bytes
	}
	return err
}

func (s *Server) progress(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	var p talon.Progress
	if err := decode(r, &p, false); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.backend.SetProgress(r.Context(), id, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) artifact(w http.ResponseWriter, r *http.Request) error {
	id, err := runID(r)
	if err != nil {
		return err
	}
	var req ArtifactRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if err := artifact.CheckURL(req.URL); err != nil {
		return talon.Errorf(talon.EINVALID, "url: %v", err)
	}
	if err := artifact.CheckName(req.Name); err != nil {
		return talon.Errorf(talon.EINVALID, "name: %v", err)
	}
	a, err := s.backend.AddArtifact(r.Context(), id, req.URL, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) artifacts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "job", "period", "before", "limit"); err != nil {
		return err
	}
	f := view.ArtifactFilter{Job: q.Get("job"), Period: q.Get("period")}
	if v := q.Get("before"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return talon.Errorf(talon.EINVALID, "before %q: want an artifact id (a positive integer)", v)
		}
		f.BeforeID = id
	}
	limit, err := limitParam(q)
	if err != nil {
		return err
	}
	f.Limit = limit
	as, err := s.backend.Artifacts(r.Context(), f)
	if err != nil {
		return err
	}
	if len(as) == limit {
		next := r.URL.Query()
		next.Set("before", strconv.FormatInt(as[len(as)-1].ID, 10))
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, next.Encode()))
	}
	writeJSON(w, http.StatusOK, nonNil(as))
	return nil
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) error {
	if err := decode(r, &struct{}{}, true); err != nil {
		return err
	}
	summary, err := s.backend.Reload(r.Context())
	if err != nil {
		return err
	}
	noteOf(r.Context()).detail = summary
	writeJSON(w, http.StatusOK, ReloadResult{Summary: summary})
	return nil
}

// onlyParams rejects query parameters a route does not know, so a typo
// (?stat=failed) is an error rather than a silently unfiltered list.
func onlyParams(q url.Values, known ...string) error {
	for k := range q {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return talon.Errorf(talon.EINVALID, "unknown query parameter %q (this route takes none)", k)
			}
			return talon.Errorf(talon.EINVALID, "unknown query parameter %q (want %s)", k, strings.Join(known, ", "))
		}
	}
	return nil
}

func limitParam(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, talon.Errorf(talon.EINVALID, "limit %q: want 1 to %d", v, MaxLimit)
	}
	return n, nil
}

func joinStates() string {
	var b strings.Builder
	for i, s := range talon.States {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// nonNil makes empty lists read as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
