package storetest

import (
	"errors"
	"maps"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// testCancelRequests: a cancel asked through one scheduler reaches the
// scheduler that owns the running run, and only while it runs.
func testCancelRequests(t *testing.T, open OpenFunc) {
	s := open(t)
	r := newRun(t, s, "j", "daily/2026-11-26")
	for _, to := range []talon.State{talon.StateReady, talon.StateRunning} {
		transition(t, s, store.Transition{RunID: r.ID, From: []talon.State{talon.StateBlocked, talon.StateReady}, To: to, Now: t0, Owner: "sched-a"})
	}
	other := runIn(t, s, "j", "daily/2026-11-26", talon.StateBlocked)
	if err := s.RequestCancel(t.Context(), other.ID, "bob"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RequestCancel of a blocked run = %v, want ErrConflict", err)
	}
	if err := s.RequestCancel(t.Context(), 99999, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RequestCancel of an unknown run = %v, want ErrNotFound", err)
	}
	if err := s.RequestCancel(t.Context(), r.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		owner string
		want  map[int64]string
	}{
		{owner: "sched-a", want: map[int64]string{r.ID: "alice"}},
		{owner: "sched-b", want: map[int64]string{}},
	} {
		got, err := s.CancelRequests(t.Context(), tt.owner)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("CancelRequests(%s) = %v, want %v", tt.owner, got, tt.want)
		}
	}
	move(t, s, r.ID, talon.StateRunning, talon.StateFailed)
	if got, _ := s.CancelRequests(t.Context(), "sched-a"); len(got) != 0 {
		t.Errorf("CancelRequests after the run ended = %v, want none", got)
	}
}
