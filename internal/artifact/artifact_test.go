package artifact

import (
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name, url string
		wantErr   string // substring; empty: accepted
	}{
		{name: "file", url: "file:///data/2026-11-26/report.csv"},
		{name: "s3", url: "s3://bucket/sales/2026-11-26.csv"},
		{name: "upper-case scheme", url: "HTTPS://example.com/x"},
		{name: "table", url: "table:warehouse.sales_daily"},
		{name: "postgres", url: "postgres://warehouse/sales_daily"},
		{name: "javascript", url: "javascript:alert(1)", wantErr: `scheme "javascript" is not allowed (allowed: file, s3`},
		{name: "javascript mixed case", url: "JaVaScRiPt:alert(1)", wantErr: "is not allowed"},
		{name: "data", url: "data:text/html,<script>alert(1)</script>", wantErr: `scheme "data" is not allowed`},
		{name: "vbscript", url: "vbscript:msgbox(1)", wantErr: `scheme "vbscript" is not allowed`},
		{name: "no scheme", url: "/data/report.csv", wantErr: "want SCHEME:"},
		{name: "empty", url: "", wantErr: "empty"},
		{name: "only scheme", url: "s3://", wantErr: "nothing after the scheme"},
		{name: "space", url: "file:///data/my report.csv", wantErr: "space or control"},
		{name: "newline", url: "file:///data/x\njavascript:alert(1)", wantErr: "space or control"},
		{name: "leading space", url: " javascript:alert(1)", wantErr: "space or control"},
		{name: "too long", url: "s3://b/" + strings.Repeat("a", MaxURL), wantErr: "want at most"},
		{name: "bad escape", url: "https://example.com/%zz", wantErr: "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckURL(tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckURL(%q) = %v, want an error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"", "report", "sales.csv", "part-1_b"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"Report", "../x", "a/b", "-x", strings.Repeat("a", MaxName+1), "a b"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", bad)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		key     string
		match   []string
		nomatch []string
	}{
		{
			name: "exact", pattern: "file:///data/{{period}}/report.csv", key: "daily/2026-11-26",
			match:   []string{"file:///data/2026-11-26/report.csv"},
			nomatch: []string{"file:///data/2026-11-27/report.csv", "file:///data/2026-11-26/report.csvx"},
		},
		{
			name: "star in a segment", pattern: "s3://bucket/{{period}}/*.csv", key: "daily/2026-11-26",
			match:   []string{"s3://bucket/2026-11-26/a.csv", "s3://bucket/2026-11-26/.csv"},
			nomatch: []string{"s3://bucket/2026-11-26/sub/a.csv", "s3://bucket/2026-11-26/a.csv.gz", "s3://bucket/2026-11-25/a.csv"},
		},
		{
			name: "regexp characters are literal", pattern: "s3://b/{{period}}/a+(1).csv", key: "daily/2026-11-26",
			match:   []string{"s3://b/2026-11-26/a+(1).csv"},
			nomatch: []string{"s3://b/2026-11-26/aa(1).csv"},
		},
		{
			name: "environment and type", pattern: "gs://{{environment}}/{{period_type}}/{{period}}/*", key: "prod:weekly/2026-W48",
			match: []string{"gs://prod/weekly/2026-W48/x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			g, err := p.Expand(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tt.match {
				if !g.Match(u) {
					t.Errorf("%s does not match %s", g, u)
				}
			}
			for _, u := range tt.nomatch {
				if g.Match(u) {
					t.Errorf("%s matches %s", g, u)
				}
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct{ pattern, wantErr string }{
		{"s3://b/{{day}}/x", "unknown placeholder {{day}} (want {{period}}, {{period_type}}, {{environment}})"},
		{"s3://b/{{period/x", "'{{' without '}}'"},
		{"s3://b/period}}/x", "'}}' without '{{'"},
		{"javascript:{{period}}", `scheme "javascript" is not allowed`},
		{"{{period}}://x", "write the URL's scheme out"},
		{"s3://b/" + strings.Repeat("*/", MaxStars+1), "more than"},
	}
	for _, tt := range tests {
		_, err := ParsePattern(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParsePattern(%q) = %v, want an error containing %q", tt.pattern, err, tt.wantErr)
		}
	}
}

func TestExpandNoEnvironment(t *testing.T) {
	p, err := ParsePattern("s3://{{environment}}/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Expand("daily/2026-11-26"); err == nil || !strings.Contains(err.Error(), "has no environment") {
		t.Fatalf("Expand = %v, want an error about the environment", err)
	}
	if !p.Uses("environment") || p.Uses("period") {
		t.Errorf("Uses is wrong")
	}
}
