package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/query"
)

// nextEvent reads the next event of a stream, bounded by the stream's ctx.
func nextEvent(t *testing.T, s *api.EventStream) talon.Event {
	t.Helper()
	e, err := s.Next()
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	return e
}

// TestEventStream follows a run through the event stream: its
// transitions, progress and artifact, in order; a stream that resumes
// after an id gets exactly the events since, then live ones; filters
// select by job, run and type.
func TestEventStream(t *testing.T) {
	t.Parallel()
	fb := setupFollow(t, api.HTTPLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s1, err := fb.client.Events(ctx, api.EventQuery{Jobs: []string{"talk"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	start := s1.LastID() // the position it started from

	run, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []talon.Event
	for len(got) == 0 || got[len(got)-1].To != talon.StateRunning {
		got = append(got, nextEvent(t, s1))
	}
	pct := 50.0
	if err := fb.client.SetProgress(ctx, run.ID, talon.Progress{Percent: &pct, Message: "half"}); err != nil {
		t.Fatal(err)
	}
	art, err := fb.client.AddArtifact(ctx, run.ID, "file:///data/report.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	fb.release(t)
	for got[len(got)-1].To != talon.StateSucceeded {
		got = append(got, nextEvent(t, s1))
	}
	type step struct {
		typ talon.EventType
		to  talon.State
	}
	want := []step{
		{talon.EventTransition, talon.StateBlocked},
		{talon.EventTransition, talon.StateReady},
		{talon.EventTransition, talon.StateRunning},
		{talon.EventProgress, talon.StateRunning},
		{talon.EventArtifact, talon.StateRunning},
		{talon.EventTransition, talon.StateSucceeded},
	}
	var have []step
	for _, e := range got {
		have = append(have, step{e.Type, e.To})
		if e.RunID != run.ID || e.Job != "talk" || e.Period != run.Period || e.ID <= start {
			t.Errorf("event %+v: want run %d of talk for %s, after %d", e, run.ID, run.Period, start)
		}
	}
	if !slices.Equal(have, want) {
		t.Fatalf("events = %v, want %v", have, want)
	}
	if p := got[3].Progress; p == nil || *p.Percent != 50 || p.Message != "half" {
		t.Errorf("progress event: %+v", got[3].Progress)
	}
	if a := got[4].Artifact; a == nil || a.ID != art.ID || a.URL != art.URL {
		t.Errorf("artifact event: %+v, want %+v", got[4].Artifact, art)
	}

	// Resume after the second event: the four since, then live ones.
	s2, err := fb.client.Events(ctx, api.EventQuery{Jobs: []string{"talk"}, After: got[1].ID})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, w := range got[2:] {
		if e := nextEvent(t, s2); e.ID != w.ID {
			t.Fatalf("resumed stream: event %d, want %d", e.ID, w.ID)
		}
	}
	again, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e1, e2 := nextEvent(t, s1), nextEvent(t, s2)
	if e1.ID != e2.ID || e1.RunID != again.ID || e1.From != "" {
		t.Fatalf("after the replay: %+v and %+v, want both the creation of run %d", e1, e2, again.ID)
	}

	// Filters: by run and type, replayed from the start.
	s3, err := fb.client.Events(ctx, api.EventQuery{Runs: []int64{run.ID}, Types: []talon.EventType{talon.EventProgress, talon.EventArtifact}, After: start, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if e := nextEvent(t, s3); e.ID != got[3].ID {
		t.Errorf("filtered: event %+v, want the progress event %d", e, got[3].ID)
	}
	if e := nextEvent(t, s3); e.ID != got[4].ID {
		t.Errorf("filtered: event %+v, want the artifact event %d", e, got[4].ID)
	}

	// The wire format, with ?after= and comma-separated types.
	q := url.Values{"after": {strconv.FormatInt(start, 10)}, "run": {strconv.FormatInt(run.ID, 10)}, "type": {"artifact,progress"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fb.url+"/api/v1/events?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 3 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	if lines[0] != "id: "+strconv.FormatInt(got[3].ID, 10) || lines[1] != "event: progress" || !strings.HasPrefix(lines[2], `data: {"id":`) {
		t.Errorf("first message = %q", lines)
	}
}

// TestEventStreamBadRequests: filters and resume points are checked.
func TestEventStreamBadRequests(t *testing.T) {
	t.Parallel()
	fb := setupFollow(t, api.HTTPLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name, query, lastID, want string
	}{
		{name: "unknown parameter", query: "jobs=a", want: `unknown query parameter "jobs"`},
		{name: "unknown type", query: "type=transition,bogus", want: `type "bogus"`},
		{name: "bad run", query: "run=0", want: `run "0"`},
		{name: "bad after", query: "after=x", want: `after "x"`},
		{name: "bad Last-Event-ID", lastID: "-3", want: `Last-Event-ID "-3"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fb.url+"/api/v1/events?"+tt.query, nil)
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid" || !strings.Contains(body.Error.Message, tt.want) {
				t.Errorf("%d %+v (%v), want 400 invalid saying %s", resp.StatusCode, body, err, tt.want)
			}
		})
	}
	var te *talon.Error
	if _, err := fb.client.Events(ctx, api.EventQuery{Types: []talon.EventType{"nope"}}); !errors.As(err, &te) || te.Code != talon.EINVALID {
		t.Errorf("client with a bad type: %v, want invalid", err)
	}
}

func tail(s string) string {
	if len(s) > 300 {
		return "…" + s[len(s)-300:]
	}
	return s
}

// TestEventStreamShutdown: a server that shuts down ends its event
// streams rather than waiting for them.
func TestEventStreamShutdown(t *testing.T) {
	t.Parallel()
	fb := setupFollow(t, api.HTTPLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fb.url+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "id: ") {
		t.Fatalf("first line %q, %v; want the position", l, err)
	}
	shut, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := fb.srv.Shutdown(shut); err != nil {
		t.Fatalf("Shutdown with an event stream open: %v (it must not wait for the stream)", err)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("stream after the shutdown: %v, want its end", err)
	}
}

// TestEventStreamResumes: a client whose server goes away reconnects to
// the next one and resumes after the last event it got, so what
// happened meanwhile arrives, once.
func TestEventStreamResumes(t *testing.T) {
	t.Parallel()
	fb := setupFollow(t, api.HTTPLimits{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := fb.client.Events(ctx, api.EventQuery{Jobs: []string{"talk"}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	reconnected := make(chan error, 100)
	stream.OnReconnect = func(err error) { reconnected <- err }
	run, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var last talon.Event
	for last.To != talon.StateRunning {
		last = nextEvent(t, stream)
	}

	// The server stops; the run ends while no server is there.
	addr := strings.TrimPrefix(fb.url, "http://")
	if err := fb.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ended, err := fb.hub.Subscribe(ctx, func(e talon.Event) bool { return e.RunID == run.ID && e.To.Terminal() })
	if err != nil {
		t.Fatal(err)
	}
	defer ended.Close()
	fb.release(t)
	got := make(chan talon.Event, 10)
	go func() {
		for {
			e, err := stream.Next()
			if err != nil {
				close(got)
				return
			}
			got <- e
		}
	}()
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("the client did not notice the server had gone")
	}
	select { // the run ends while no server is there
	case e := <-ended.Events():
		if e.To != talon.StateSucceeded {
			t.Fatalf("run ended %s", e.To)
		}
	case <-ctx.Done():
		t.Fatal("the run did not end")
	}

	// The next server, at the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewHTTPServer(api.NewServer(api.Join(query.New(fb.st, fb.engine, nil), fb.engine), fb.logger, api.WithFeed(fb.hub)), api.HTTPLimits{})
	go srv.Serve(ln)
	defer srv.Close()
	select {
	case e, ok := <-got:
		if !ok || e.RunID != run.ID || e.To != talon.StateSucceeded || e.ID <= last.ID {
			t.Fatalf("after reconnecting: %+v (open %v), want run %d's success", e, ok, run.ID)
		}
	case <-ctx.Done():
		t.Fatal("no event after the server came back")
	}
}
