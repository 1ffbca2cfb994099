package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/feed"
)

// WithFeed gives the server the process's event feed, which GET
// /api/v1/events streams and log following waits on. Without one, the
// event stream answers unavailable and log following polls the run.
func WithFeed(h *feed.Hub) Option {
	return func(s *Server) { s.feed = h }
}

// EventHeartbeat is how often an idle event stream sends a comment, so
// that proxies and load balancers keep the connection open.
const EventHeartbeat = 15 * time.Second

// AfterParam is the query parameter that resumes an event stream after
// an event id, for clients that cannot send the Last-Event-ID header
// (which wins when both are given: a browser's EventSource reconnects
// with the header, to the URL it was first given).
const AfterParam = "after"

// EventQuery selects the events of a stream. Zero fields match all.
type EventQuery struct {
	Jobs  []string
	Runs  []int64
	Types []talon.EventType
	// After resumes the stream after this event id: the events since
	// are replayed from the store, then live ones follow. With After
	// zero, Resume replays every event; otherwise the stream has only
	// live events.
	After  int64
	Resume bool
}

// Match reports whether e is one of the events q selects.
func (q EventQuery) Match(e talon.Event) bool {
	return (len(q.Jobs) == 0 || slices.Contains(q.Jobs, e.Job)) &&
		(len(q.Runs) == 0 || slices.Contains(q.Runs, e.RunID)) &&
		(len(q.Types) == 0 || slices.Contains(q.Types, e.Type))
}

// values encodes q as query parameters (without After).
func (q EventQuery) values() url.Values {
	v := url.Values{}
	for _, j := range q.Jobs {
		v.Add("job", j)
	}
	for _, r := range q.Runs {
		v.Add("run", strconv.FormatInt(r, 10))
	}
	for _, t := range q.Types {
		v.Add("type", string(t))
	}
	return v
}

// parseEventQuery reads the filters and the resume point of a request.
func parseEventQuery(r *http.Request) (EventQuery, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "job", "run", "type", AfterParam); err != nil {
		return EventQuery{}, err
	}
	var eq EventQuery
	eq.Jobs = listParam(q, "job")
	for _, v := range listParam(q, "run") {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return EventQuery{}, talon.Errorf(talon.EINVALID, "run %q: want a positive integer", v)
		}
		eq.Runs = append(eq.Runs, id)
	}
	for _, v := range listParam(q, "type") {
		t := talon.EventType(v)
		if !slices.Contains(talon.EventTypes, t) {
			return EventQuery{}, talon.Errorf(talon.EINVALID, "type %q: want one of %s", v, eventTypeNames())
		}
		eq.Types = append(eq.Types, t)
	}
	after, where := q.Get(AfterParam), AfterParam
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		after, where = h, "Last-Event-ID"
	}
	if after != "" {
		id, err := strconv.ParseInt(strings.TrimSpace(after), 10, 64)
		if err != nil || id < 0 {
			return EventQuery{}, talon.Errorf(talon.EINVALID, "%s %q: want an event id (a non-negative integer)", where, after)
		}
		eq.After = id
	}
	return eq, nil
}

// listParam reads a parameter that may be repeated or comma-separated.
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func eventTypeNames() string {
	names := make([]string, len(talon.EventTypes))
	for i, t := range talon.EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// events streams the event feed as Server-Sent Events: each message has
// the event's id, its type as the SSE event name, and the event as JSON.
// A stream that resumes (Last-Event-ID, or ?after=) first gets the
// events since that id from the store, then live ones, with none missed
// and none repeated (see package feed). A stream that does not resume
// starts with a message holding only an id: the position it starts
// from, so a client that reconnects before any event came resumes from
// there. A client too slow to keep up gets an "error" message and the
// stream ends; it reconnects with the id of the last event it got.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	eq, err := parseEventQuery(r)
	if err != nil {
		return err
	}
	if s.feed == nil {
		return talon.Errorf(talon.EUNAVAILABLE, "this server has no event feed")
	}
	ctx := r.Context()
	sub, err := s.feed.Subscribe(ctx, eq.Match)
	if err != nil {
		if errors.Is(err, feed.ErrClosed) {
			return talon.Errorf(talon.EUNAVAILABLE, "the server is shutting down")
		}
		return err
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold the stream back
	sw := s.streamWriter(w)
	// The stream lasts until the client leaves: lift the server's
	// deadlines (each write gets its own, in streamWriter).
	_ = sw.rc.SetReadDeadline(time.Time{})
	_ = sw.rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)

	send := func(e talon.Event) error {
		msg, err := appendEvent(nil, e)
		if err != nil {
			return err
		}
		_, err = sw.Write(msg)
		return err
	}
	if eq.After > 0 || r.Header.Get("Last-Event-ID") != "" || r.URL.Query().Has(AfterParam) {
		if err := sub.Replay(ctx, eq.After, send); err != nil {
			if sw.failed || ctx.Err() != nil {
				return nil
			}
			s.logger.Warn("event stream: replay", "err", err)
			panic(http.ErrAbortHandler) // cut: the client must reconnect and resume
		}
	} else if _, err := fmt.Fprintf(sw, "id: %d\n\n", sub.Position()); err != nil {
		return nil
	}
	if err := sw.flush(); err != nil {
		return nil
	}

	beat := time.NewTicker(EventHeartbeat)
	defer beat.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			// The server is shutting down: end the stream; the client
			// resumes from its last id at the next server.
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(sw, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case e, ok := <-sub.Events():
			if !ok {
				msg := "the event stream ended"
				if err := sub.Err(); err != nil {
					msg = err.Error()
				}
				var b errorBody
				b.Error.Code, b.Error.Message = talon.EUNAVAILABLE, msg+"; reconnect with Last-Event-ID to resume"
				body, _ := json.Marshal(b)
				_, _ = fmt.Fprintf(sw, "event: error\ndata: %s\n\n", body)
				return nil
			}
			// Send what is there in one write: with many subscribers, a
			// write (and flush) per event is most of a busy server's work.
			buf = buf[:0]
			// Take what is already there (no waiting), up to eventBatch
			// bytes: an event is only taken off the subscription once it
			// will be sent.
			for {
				if sub.Fresh(e) {
					if buf, err = appendEvent(buf, e); err != nil {
						return err
					}
				}
				if len(buf) >= eventBatch {
					break
				}
				var more bool
				select {
				case e, more = <-sub.Events():
				default:
				}
				if !more {
					break
				}
			}
			if len(buf) > 0 {
				if _, err := sw.Write(buf); err != nil {
					return nil
				}
			}
		}
	}
}

// eventBatch bounds the bytes of events sent in one write.
const eventBatch = 64 << 10

// appendEvent appends e as one Server-Sent Events message to buf.
func appendEvent(buf []byte, e talon.Event) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return buf, err
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, e.ID, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, e.Type...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, body...)
	return append(buf, "\n\n"...), nil
}

// runEnd tells when a run reaches a terminal state, from the event feed.
type runEnd struct {
	c    chan struct{} // closed when the run has ended
	sub  *feed.Sub     // nil without a feed
	done chan struct{}
}

// watchEnd starts watching run id's end. Without a feed, or when the
// subscription ends early (a shutdown), live reports false and the
// caller polls the run instead.
func (s *Server) watchEnd(ctx context.Context, id int64) *runEnd {
	re := &runEnd{c: make(chan struct{}), done: make(chan struct{})}
	if s.feed == nil {
		close(re.done)
		return re
	}
	sub, err := s.feed.Subscribe(ctx, func(e talon.Event) bool {
		return e.RunID == id && e.Type == talon.EventTransition && e.To.Terminal()
	})
	if err != nil {
		close(re.done)
		return re
	}
	re.sub = sub
	go func() {
		defer close(re.done)
		if _, ok := <-sub.Events(); ok {
			close(re.c)
		}
	}()
	return re
}

// live reports whether the feed is still watching.
func (re *runEnd) live() bool {
	select {
	case <-re.done:
		select {
		case <-re.c:
			return true // ended, and said so
		default:
			return false
		}
	default:
		return true
	}
}

func (re *runEnd) stop() {
	if re.sub != nil {
		re.sub.Close()
	}
	<-re.done
}
