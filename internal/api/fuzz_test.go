package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// Fuzz targets of the request body decoders: whatever the body, the
// answer is a success or a 4xx JSON error, never a 5xx and never a
// panic. `go test` runs the seeds (below and in testdata/fuzz/);
// `go test -fuzz=FuzzTriggerBody ./internal/api` explores.

func fuzzBody(f *testing.F, method, target string, seeds ...string) {
	for _, s := range append(seeds, "", "{}", "null", "[]", `{"a":1}`, "{", "\x00", `{} {}`, strings.Repeat("[", 10000)) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tb := setup(t)
		req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		tb.server.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %s with %q: %d %s", method, target, body, rec.Code, rec.Body)
		case rec.Code >= 400:
			var eb struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%s %s with %q: %d, not a JSON error: %s", method, target, body, rec.Code, rec.Body)
			}
		}
	})
}

func FuzzTriggerBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/jobs/extract/trigger",
		`{"period": "daily/2026-11-26"}`, `{"params": {"n": "3"}, "key": "k"}`, `{"params": {"n": 3}}`, `{"period": 7}`)
}

func FuzzProgressBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/runs/3/progress",
		`{"percent": 40}`, `{"percent": -1}`, `{"percent": 1e400}`, `{"items": [{"name": "eu", "state": "done"}]}`, `{"items": [{"name": ""}]}`, `{"expected": "20m"}`, `{"expected": "soon"}`)
}

func FuzzArtifactBody(f *testing.F) {
	fuzzBody(f, "POST", "/api/v1/runs/3/artifacts",
		`{"url": "https://example.com/a.csv"}`, `{"url": ""}`, `{"url": "javascript:alert(1)"}`, `{"url": 1}`)
}

func FuzzCancelBody(f *testing.F) { fuzzBody(f, "POST", "/api/v1/runs/3/cancel") }

func FuzzRetryBody(f *testing.F) { fuzzBody(f, "POST", "/api/v1/runs/2/retry") }

func FuzzReloadBody(f *testing.F) { fuzzBody(f, "POST", "/api/v1/reload") }
