package runtoken_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/auth"
	"github.com/talonhq/talon/internal/auth/runtoken"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

var t0 = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

// stores opens two handles on one fresh database of each kind, as two
// schedulers sharing it would.
func stores(t *testing.T) map[string]func(t *testing.T) (store.Store, store.Store) {
	return map[string]func(t *testing.T) (store.Store, store.Store){
		"sqlite": func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "talon.db")
			return openSQLite(t, path), openSQLite(t, path)
		},
		"postgres": func(t *testing.T) (store.Store, store.Store) {
			u := talontest.PostgresURL(t)
			return openPostgres(t, u), openPostgres(t, u)
		},
	}
}

func openSQLite(t *testing.T, path string) store.Store {
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T, u string) store.Store {
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runIn creates a run of job j and moves it along its life to state.
func runIn(t *testing.T, st store.Store, state talon.State) talon.Run {
	t.Helper()
	res, err := st.CreateRuns(t.Context(), []store.CreateRun{{Job: "j", Period: "daily/2026-11-26", Now: t0}})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0].Run
	path := map[talon.State][]talon.State{
		talon.StateBlocked:   nil,
		talon.StateRunning:   {talon.StateReady, talon.StateRunning},
		talon.StateSucceeded: {talon.StateReady, talon.StateRunning, talon.StateSucceeded},
		talon.StateFailed:    {talon.StateReady, talon.StateRunning, talon.StateFailed},
		talon.StateSkipped:   {talon.StateSkipped},
	}[state]
	from := talon.StateBlocked
	for _, to := range path {
		out, err := st.Transition(t.Context(), []store.Transition{{RunID: r.ID, From: []talon.State{from}, To: to, Now: t0, Owner: "test"}})
		if err != nil || out[0].Err != nil {
			t.Fatalf("move run %d to %s: %v %v", r.ID, to, err, out[0].Err)
		}
		r, from = out[0].Run, to
	}
	return r
}

func TestSource(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, peer := open(t)
			src, err := runtoken.New(t.Context(), st)
			if err != nil {
				t.Fatal(err)
			}
			// Another scheduler on the same database: its source was made
			// separately, and knows every run's token all the same.
			peerSrc, err := runtoken.New(t.Context(), peer)
			if err != nil {
				t.Fatal(err)
			}
			running := runIn(t, st, talon.StateRunning)
			blocked := runIn(t, st, talon.StateBlocked)
			other := runIn(t, st, talon.StateRunning)
			tok := src.Mint(running.ID)
			if !strings.HasPrefix(tok, runtoken.Prefix) {
				t.Fatalf("token %q lacks the prefix %q", tok, runtoken.Prefix)
			}
			_, mac, _ := strings.Cut(strings.TrimPrefix(tok, runtoken.Prefix), ".")

			want := auth.Principal{Name: "run " + itoa(running.ID), Role: auth.RoleRun, Run: running.ID, Source: runtoken.SourceName}
			for _, s := range []*runtoken.Source{src, peerSrc} {
				got, err := s.Authenticate(t.Context(), tok)
				if err != nil || got != want {
					t.Fatalf("Authenticate(valid) = %+v, %v; want %+v", got, err, want)
				}
			}
			if !want.Allows(auth.PermReport, running.ID) || want.Allows(auth.PermReport, other.ID) || want.Allows(auth.PermRead, 0) {
				t.Fatalf("a run principal's permissions are wrong: %+v", want)
			}
			if _, err := src.Authenticate(t.Context(), src.Mint(blocked.ID)); err != nil {
				t.Errorf("token of a blocked run: %v, want accepted (it may report before it is recorded running)", err)
			}

			flip := []byte(mac)
			flip[3] ^= 'A' ^ 'B'
			tests := []struct {
				name    string
				token   string
				wantErr error
			}{
				{name: "other source's token", token: "s3cr3t-operator-token", wantErr: auth.ErrUnknownToken},
				{name: "empty", token: "", wantErr: auth.ErrUnknownToken},
				{name: "tampered signature", token: runtoken.Prefix + itoa(running.ID) + "." + string(flip), wantErr: auth.ErrUnknownToken},
				{name: "other run's id with this signature", token: runtoken.Prefix + itoa(other.ID) + "." + mac, wantErr: auth.ErrUnknownToken},
				{name: "padded id", token: runtoken.Prefix + "0" + itoa(running.ID) + "." + mac, wantErr: auth.ErrUnknownToken},
				{name: "no signature", token: runtoken.Prefix + itoa(running.ID), wantErr: auth.ErrUnknownToken},
				{name: "not base64", token: runtoken.Prefix + itoa(running.ID) + ".!!!", wantErr: auth.ErrUnknownToken},
				{name: "unknown run", token: src.Mint(999999), wantErr: auth.ErrRejected},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					p, err := src.Authenticate(t.Context(), tt.token)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Authenticate(%q) = %+v, %v; want %v", tt.token, p, err, tt.wantErr)
					}
				})
			}

			// The token dies with its run, on every scheduler.
			for _, end := range []talon.State{talon.StateSucceeded, talon.StateFailed, talon.StateSkipped} {
				r := runIn(t, st, end)
				for _, s := range []*runtoken.Source{src, peerSrc} {
					_, err := s.Authenticate(t.Context(), src.Mint(r.ID))
					if !errors.Is(err, auth.ErrRejected) || !strings.Contains(err.Error(), "has ended ("+string(end)+")") {
						t.Errorf("token of a %s run: %v, want rejected because it has ended", end, err)
					}
				}
			}
			out, err := st.Transition(t.Context(), []store.Transition{{RunID: running.ID, From: []talon.State{talon.StateRunning}, To: talon.StateSucceeded, Now: t0}})
			if err != nil || out[0].Err != nil {
				t.Fatal(err, out[0].Err)
			}
			if _, err := peerSrc.Authenticate(t.Context(), tok); !errors.Is(err, auth.ErrRejected) {
				t.Errorf("token after its run ended = %v, want rejected", err)
			}
		})
	}
}

// TestRestart: a scheduler that restarts (a new Source on a new handle)
// accepts the token a running run got from the one before.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "talon.db")
	st := openSQLite(t, path)
	src, err := runtoken.New(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	r := runIn(t, st, talon.StateRunning)
	tok := src.Mint(r.ID)
	st.Close()

	again, err := runtoken.New(t.Context(), openSQLite(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := again.Authenticate(t.Context(), tok); err != nil || p.Run != r.ID {
		t.Fatalf("after a restart: %+v, %v", p, err)
	}
	if again.Mint(r.ID) != tok {
		t.Errorf("a restarted scheduler mints another token for the same run")
	}
	// Another database signs with another key.
	fresh, err := runtoken.New(t.Context(), openSQLite(t, filepath.Join(t.TempDir(), "other.db")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Authenticate(t.Context(), tok); !errors.Is(err, auth.ErrUnknownToken) {
		t.Errorf("another database's token = %v, want unknown", err)
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
