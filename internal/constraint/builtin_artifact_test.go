package constraint_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/constraint"
)

func TestArtifactCheck(t *testing.T) {
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	arts := []talon.Artifact{
		{ID: 1, RunID: 10, Job: "extract", Period: "daily/2026-11-25", URL: "s3://b/2026-11-25/a.csv"},
		{ID: 2, RunID: 11, Job: "extract", Period: "daily/2026-11-26", URL: "s3://b/2026-11-26/a.csv"},
		{ID: 3, RunID: 12, Job: "other", Period: "daily/2026-11-26", URL: "s3://b/2026-11-26/sub/x.csv"},
		{ID: 4, RunID: 13, Job: "other", Period: "daily/2026-11-26", URL: "file:///data/2026-11-26/o.txt"},
	}
	tests := []struct {
		name       string
		value      any
		lookup     fakeLookup
		want       talon.Action
		wantReason string
	}{
		{
			name: "any job's artifact of the period", value: "s3://b/{{period}}/*.csv",
			lookup: fakeLookup{artifacts: arts}, want: talon.ActionPass,
			wantReason: "s3://b/2026-11-26/a.csv added by run 11 of extract",
		},
		{
			name: "no match: the star stays in its segment", value: "s3://b/{{period}}/*.txt",
			lookup: fakeLookup{artifacts: arts}, want: talon.ActionBlock,
			wantReason: "waiting for an artifact matching s3://b/2026-11-26/*.txt in daily/2026-11-26",
		},
		{
			name: "named job", value: map[string]any{"url": "file:///data/{{period}}/*", "job": "extract"},
			lookup: fakeLookup{artifacts: arts}, want: talon.ActionBlock,
			wantReason: "waiting for an artifact of extract matching file:///data/2026-11-26/* in daily/2026-11-26",
		},
		{
			name: "previous period of a named job", value: map[string]any{"url": "s3://b/{{period}}/a.csv", "job": "extract", "period": "previous"},
			lookup: fakeLookup{artifacts: arts}, want: talon.ActionPass,
			wantReason: "s3://b/2026-11-25/a.csv added by run 10 of extract",
		},
		{
			name: "all of a list", value: []any{"s3://b/{{period}}/a.csv", "s3://b/{{period}}/missing.csv"},
			lookup: fakeLookup{artifacts: arts}, want: talon.ActionBlock,
			wantReason: "waiting for an artifact matching s3://b/2026-11-26/missing.csv in daily/2026-11-26",
		},
		{
			name: "lookup error blocks", value: "s3://b/{{period}}/a.csv",
			lookup: fakeLookup{err: errors.New("store down")}, want: talon.ActionBlock,
			wantReason: "list artifacts: store down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, "artifact", tt.value)
			if w, ok := c.(constraint.ArtifactWaiter); !ok || !w.WaitsForArtifacts() {
				t.Fatalf("artifact constraint is not an ArtifactWaiter")
			}
			a := c.Check(t.Context(), dailyInput(now, "2026-11-26", time.UTC, tt.lookup))
			if a.Action != tt.want || !strings.Contains(a.Reason, tt.wantReason) {
				t.Fatalf("Check = %s %q, want %s containing %q", a.Action, a.Reason, tt.want, tt.wantReason)
			}
			if !a.RecheckAt.IsZero() {
				t.Errorf("RecheckAt = %s, want zero (artifacts arrive as events)", a.RecheckAt)
			}
		})
	}
}

func TestArtifactCompileErrors(t *testing.T) {
	tests := []struct {
		value   any
		wantErr string
	}{
		{value: "javascript:alert(1)", wantErr: `artifact: artifact URL "javascript:alert(1)": scheme "javascript" is not allowed`},
		{value: "s3://b/{{day}}/x", wantErr: "unknown placeholder {{day}}"},
		{value: 3, wantErr: "artifact: want a URL pattern"},
		{value: []any{}, wantErr: "want at least one pattern"},
		{value: map[string]any{"url": "s3://b/x", "jobs": "a"}, wantErr: `unknown key "jobs"`},
		{value: map[string]any{"url": "s3://b/x", "period": "next"}, wantErr: "artifact: period: want same or previous"},
		{value: []any{"s3://b/x", map[string]any{"job": "a"}}, wantErr: "artifact[1]: url: want a URL pattern"},
	}
	for _, tt := range tests {
		_, err := constraint.Compile("artifact", tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Compile(artifact, %#v) = %v, want an error containing %q", tt.value, err, tt.wantErr)
		}
	}
}
