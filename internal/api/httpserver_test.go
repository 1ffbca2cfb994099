package api_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/api"
)

// startHTTP serves the fixture backend through api.NewHTTPServer with
// limits l on a real loopback socket, and returns its address.
func startHTTP(t *testing.T, l api.HTTPLimits) string {
	t.Helper()
	tb := setup(t)
	srv := api.NewHTTPServer(tb.server, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads from c until the server closes it, and reports
// whether that happened within d. Anything the server answers first is
// returned.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) (bool, string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, string(b)
	}
	return true, string(b) // EOF or a reset: the server hung up
}

func TestHTTPServerDefaults(t *testing.T) {
	t.Parallel()
	srv := api.NewHTTPServer(setup(t).server, api.HTTPLimits{})
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout,
	} {
		if d <= 0 {
			t.Errorf("%s = %v, want a bound", name, d)
		}
	}
	if l := srv.Limits(); l.MaxConns <= 0 {
		t.Errorf("MaxConns = %d, want a bound", l.MaxConns)
	}
}

// A body trickled a byte at a time must not hold a connection (and a
// goroutine) for as long as the client likes: the whole request has
// ReadTimeout.
func TestHTTPServerTrickledBody(t *testing.T) {
	t.Parallel()
	addr := startHTTP(t, api.HTTPLimits{ReadTimeout: 500 * time.Millisecond})
	c := dial(t, addr)
	body := `{"period": "daily/2026-11-26"}`
	fmt.Fprintf(c, "POST /api/v1/jobs/extract/trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	start := time.Now()
	// One byte every 100ms would take 3s; the server must give up first.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	closed, answer := closedWithin(t, c, 2500*time.Millisecond)
	if !closed {
		t.Fatalf("connection still open %v into a trickled body; answer so far %q", time.Since(start), answer)
	}
	if answer != "" && !strings.Contains(answer, "408 Request Timeout") {
		t.Errorf("answer to a trickled body: %q, want 408 or none", firstLine(answer))
	}
	if strings.Contains(answer, "201 Created") {
		t.Errorf("the trickled request was served: %q", firstLine(answer))
	}
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestHTTPServerIdle(t *testing.T) {
	t.Parallel()
	addr := startHTTP(t, api.HTTPLimits{IdleTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	fmt.Fprint(c, "GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = br.ReadByte()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle keep-alive connection still open after %v", time.Since(start))
	}
}

// Connections beyond MaxConns wait for a slot: the server never holds
// more at once.
func TestHTTPServerMaxConns(t *testing.T) {
	t.Parallel()
	addr := startHTTP(t, api.HTTPLimits{MaxConns: 2, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute})
	first := dial(t, addr)
	dial(t, addr)
	third := dial(t, addr)
	fmt.Fprint(third, "GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if closed, answer := closedWithin(t, third, 300*time.Millisecond); closed || answer != "" {
		t.Fatalf("a third connection was served while two were open (closed %v, answer %q)", closed, firstLine(answer))
	}
	first.Close()
	closed, answer := closedWithin(t, third, 5*time.Second)
	if !closed || !strings.HasPrefix(answer, "HTTP/1.1 200 ") {
		t.Fatalf("the third connection once a slot was free: closed %v, answer %q; want 200", closed, firstLine(answer))
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}
