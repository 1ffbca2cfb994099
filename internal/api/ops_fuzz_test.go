package api_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/api/apitest"
	"github.com/talonhq/talon/internal/view"
)

// FuzzOpsBodies sends arbitrary bodies to the routes of pause, mark and
// the bulk operations: whatever comes, the answer is JSON and never a
// 5xx (the backend is in memory and does not fail).
func FuzzOpsBodies(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"reason":"disk full"}`, `{"state":"succeeded","reason":"fixed by hand"}`,
		`{"state":"running","reason":"x"}`, `{"state":1}`, `{"job":"extract","states":["blocked"],"dry_run":true}`,
		`{"job":"extract","states":["nope"]}`, `{"period":"daily/2026-11-26"}`, `{"job":"x"} {}`, `[`, `null`,
		`{"job":"extract","states":"blocked"}`, "{\"reason\":\"\u0000\"}",
	} {
		for _, path := range []string{"jobs/extract/pause", "jobs/extract/resume", "runs/1/mark", "runs/cancel", "runs/retry"} {
			f.Add(path, seed)
		}
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "jobs/extract/pause", "jobs/extract/resume", "runs/1/mark", "runs/2/mark", "runs/cancel", "runs/retry":
		default:
			t.Skip()
		}
		b := apitest.New(view.JobInfo{Name: "extract", Period: "daily", Timezone: "UTC", Executor: "local"})
		b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-26", State: talon.StateFailed}, nil, nil)
		b.Add(talon.Run{Job: "extract", Period: "daily/2026-11-26", State: talon.StateBlocked}, nil, nil)
		s := api.NewServer(b, slog.New(slog.DiscardHandler))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", api.Prefix+path, strings.NewReader(body)))
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("POST %s %q: content type %q", path, body, ct)
		}
	})
}
