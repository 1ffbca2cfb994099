// Package talontest holds helpers for Talon's tests: a PostgreSQL schema
// per test, and a fake clock.
package talontest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// HowToPostgres says how to run the PostgreSQL tests.
const HowToPostgres = "set TALON_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests (scripts/test does)"

// PostgresURL returns the URL of a fresh schema on TALON_TEST_POSTGRES,
// dropped when the test ends. Without TALON_TEST_POSTGRES, or when the
// server is unreachable, the test is skipped — except with CI=true, where
// it fails: CI must never pass without PostgreSQL.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TALON_TEST_POSTGRES")
	ci := os.Getenv("CI") == "true"
	if base == "" {
		if ci {
			tb.Fatalf("TALON_TEST_POSTGRES is not set and CI=true: %s", HowToPostgres)
		}
		tb.Skip(HowToPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if ci {
			tb.Fatalf("PostgreSQL at TALON_TEST_POSTGRES is unreachable: %v", err)
		}
		tb.Skipf("PostgreSQL at TALON_TEST_POSTGRES is unreachable (%v); %s", err, HowToPostgres)
	}
	conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "talontest_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("TALON_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return u.String()
}

// Clock is a fake clock a test moves by hand; Now is safe to call from
// any goroutine.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
