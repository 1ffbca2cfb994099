package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
)

// Reconnection delays of an EventStream.
const (
	streamRetryMin = 100 * time.Millisecond
	streamRetryMax = 5 * time.Second
)

// EventStream reads GET /api/v1/events. When the connection drops, the
// server shuts down or drops it as too slow, Next reconnects and resumes
// after the last event it returned (Last-Event-ID), so the caller sees
// every event once.
type EventStream struct {
	c   *Client
	ctx context.Context
	q   EventQuery
	br  *bufio.Reader // of the current connection; nil between them

	mu     sync.Mutex // guards body and closed: Close may come from another goroutine
	body   io.ReadCloser
	closed bool

	last int64 // resume point; valid once resume is true
	// resume is set once the stream has a position: the query's After,
	// or the first id the server sent.
	resume bool
	// OnReconnect, when set, is called before each reconnection with
	// the reason.
	OnReconnect func(err error)
}

// Events opens the event stream of the events q selects, and returns
// once the server has subscribed: every event after that is delivered.
// ctx bounds the whole stream. Errors are those of the first connection
// (a bad filter is invalid; an unreachable server unavailable).
func (c *Client) Events(ctx context.Context, q EventQuery) (*EventStream, error) {
	s := &EventStream{c: c, ctx: ctx, q: q, last: q.After, resume: q.Resume || q.After > 0}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *EventStream) connect() error {
	hdr := http.Header{"Accept": {"text/event-stream"}}
	if s.resume {
		hdr.Set("Last-Event-ID", strconv.FormatInt(s.last, 10))
	}
	resp, err := s.c.sendWith(s.ctx, s.c.User, http.MethodGet, "events", s.q.values(), nil, hdr)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return readError(resp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		resp.Body.Close()
		return ErrStreamClosed
	}
	s.body, s.br = resp.Body, bufio.NewReader(resp.Body)
	return nil
}

// ErrStreamClosed is what Next returns after Close.
var ErrStreamClosed = errors.New("event stream closed")

// drop closes the current connection, if any.
func (s *EventStream) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	s.br = nil
}

func (s *EventStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// LastID is the id of the last event Next returned, or the position the
// stream started from.
func (s *EventStream) LastID() int64 { return s.last }

// Close ends the stream; a Next under way, or to come, returns
// ErrStreamClosed. It may be called from any goroutine.
func (s *EventStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.body != nil {
		return s.body.Close()
	}
	return nil
}

// Next returns the next event, reconnecting as needed. It returns an
// error when ctx ends, or when a reconnection is refused for a reason
// that waiting does not cure (invalid, unauthorized, forbidden).
func (s *EventStream) Next() (talon.Event, error) {
	wait := streamRetryMin
	for {
		if s.isClosed() {
			return talon.Event{}, ErrStreamClosed
		}
		if s.br != nil {
			e, err := s.read()
			if err == nil {
				return e, nil
			}
			s.drop()
			if s.ctx.Err() != nil {
				return talon.Event{}, s.ctx.Err()
			}
			if s.isClosed() {
				return talon.Event{}, ErrStreamClosed
			}
			if s.OnReconnect != nil {
				s.OnReconnect(err)
			}
		}
		err := s.connect()
		if err == nil {
			wait = streamRetryMin
			continue
		}
		if s.ctx.Err() != nil {
			return talon.Event{}, s.ctx.Err()
		}
		if errors.Is(err, ErrStreamClosed) {
			return talon.Event{}, err
		}
		var te *talon.Error
		if errors.As(err, &te) && te.Code != talon.EUNAVAILABLE && te.Code != talon.EINTERNAL {
			return talon.Event{}, err
		}
		if s.OnReconnect != nil {
			s.OnReconnect(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return talon.Event{}, s.ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, streamRetryMax)
	}
}

// read reads messages until one carries an event. A message with only an
// id moves the resume point; an "error" message ends the connection.
func (s *EventStream) read() (talon.Event, error) {
	var id, event string
	var data strings.Builder
	haveID := false
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the server never ends a stream for good
			}
			return talon.Event{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "": // a comment: a keep-alive
			case "id":
				id, haveID = value, true
			case "event":
				event = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
			continue
		}
		// A blank line ends a message.
		if haveID {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return talon.Event{}, fmt.Errorf("event stream: bad id %q", id)
			}
			s.last, s.resume = n, true
		}
		switch {
		case event == "error":
			var eb errorBody
			if json.Unmarshal([]byte(data.String()), &eb) == nil && eb.Error.Code != "" {
				return talon.Event{}, &talon.Error{Code: eb.Error.Code, Message: eb.Error.Message}
			}
			return talon.Event{}, fmt.Errorf("event stream: error %q", data.String())
		case data.Len() > 0:
			var e talon.Event
			if err := json.Unmarshal([]byte(data.String()), &e); err != nil {
				return talon.Event{}, fmt.Errorf("event stream: event %s: %w", id, err)
			}
			return e, nil
		}
		id, event, haveID = "", "", false
		data.Reset()
	}
}
