//go:build unix

package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/feed"
)

// TestEventStreamSlowConsumer: a consumer that stops reading is dropped
// — told so in an error message that ends its stream — while another
// keeps receiving every event, and the writers are never held up.
func TestEventStreamSlowConsumer(t *testing.T) {
	t.Parallel()
	fb := setupFeed(t, api.HTTPLimits{}, feed.Options{Buffer: 16})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	run, _, err := fb.client.Trigger(ctx, "talk", talon.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := fb.client.Events(ctx, api.EventQuery{Runs: []int64{run.ID}, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	for d, err := fb.client.Run(ctx, run.ID); d.State != talon.StateRunning; {
		if err != nil {
			t.Fatal(err)
		}
		nextEvent(t, watch)
		d, err = fb.client.Run(ctx, run.ID)
	}

	// The slow one subscribes and never reads, until the end. Its
	// socket's receive buffer is small, so that a few megabytes fill
	// what the kernel holds for it.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	slowClient := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fb.url+"/api/v1/events?type=progress", nil)
	slow, err := slowClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	fast, err := fb.client.Events(ctx, api.EventQuery{Types: []talon.EventType{talon.EventProgress}})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var reconnects atomic.Int32
	fast.OnReconnect = func(err error) {
		reconnects.Add(1)
		t.Logf("fast consumer reconnects: %v", err)
	}

	// Far more than the socket buffers of the slow one hold.
	const n = 60
	// Each report is ~64 KiB: 256 items with names of 250 bytes (the
	// progress rules bound the message, not the items).
	var big []talon.ProgressItem
	for i := range 256 {
		big = append(big, talon.ProgressItem{Name: fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 246)), State: "done"})
	}
	got := make(chan talon.Event, n)
	go func() {
		for range n {
			e, err := fast.Next()
			if err != nil {
				return
			}
			got <- e
		}
	}()
	for i := range n {
		pct := float64(i) / 2
		if err := fb.client.SetProgress(ctx, run.ID, talon.Progress{Percent: &pct, Items: big}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case e := <-got:
			if e.Progress == nil || *e.Progress.Percent != float64(i)/2 {
				t.Fatalf("fast consumer: event %d (id %d) has percent %v, want %v", i, e.ID, percentOf(e.Progress), float64(i)/2)
			}
		case <-ctx.Done():
			t.Fatalf("fast consumer: %d of %d events", i, n)
		}
	}
	if k := reconnects.Load(); k > 0 {
		t.Errorf("the fast consumer was cut off %d times", k)
	}
	rest, err := io.ReadAll(slow.Body)
	if err != nil {
		t.Fatalf("slow consumer's stream: %v", err)
	}
	if !strings.HasSuffix(string(rest), "\n\n") || !strings.Contains(string(rest), "event: error\ndata: ") || !strings.Contains(string(rest), "too slow") {
		t.Errorf("slow consumer's stream ends with %q, want an error message saying it was too slow", tail(string(rest)))
	}
	if k := strings.Count(string(rest), "event: progress"); k >= n {
		t.Errorf("slow consumer got all %d events; it should have been dropped", k)
	}
	fb.release(t)
}

func percentOf(p *talon.Progress) any {
	if p == nil || p.Percent == nil {
		return nil
	}
	return *p.Percent
}
