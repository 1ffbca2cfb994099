package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
)

func TestExitCodes(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(api.NewServer(fixtureBackend(), slog.New(slog.DiscardHandler)))
	t.Cleanup(hs.Close)
	dead, err := deadURL()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("jobs:\n  a:\n    command: [x]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("jobs:\n  a:\n    command: [x]\n    schedul: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr string // a line that must be in stderr
	}{
		{name: "ok", args: []string{"runs"}, wantCode: 0},
		{name: "help", args: []string{"--help"}, wantCode: 0},
		{name: "validate ok", args: []string{"validate", good}, wantCode: 0},
		{name: "validate errors", args: []string{"validate", bad}, wantCode: 1, wantStderr: "talon: 1 error in " + bad},
		{name: "unknown verb", args: []string{"rnus"}, wantCode: 2, wantStderr: "try: talon runs"},
		{name: "unknown flag", args: []string{"runs", "--jbo", "x"}, wantCode: 2, wantStderr: "talon: unknown flag: --jbo"},
		{name: "missing argument", args: []string{"show"}, wantCode: 2, wantStderr: "talon: show: want RUN, got no arguments"},
		{name: "cancel without run or filter", args: []string{"cancel"}, wantCode: 2, wantStderr: "talon: cancel: give a RUN, or --job and/or --period to cancel the runs they match"},
		{name: "cancel with run and filter", args: []string{"cancel", "3", "--job", "x"}, wantCode: 2, wantStderr: "talon: cancel: give a RUN or a filter (--job, --period, --state), not both"},
		{name: "mark without reason", args: []string{"mark", "3", "succeeded"}, wantCode: 2, wantStderr: "talon: mark: --reason is required: say why the run is marked succeeded"},
		{name: "mark bad state", args: []string{"mark", "3", "done", "--reason", "x"}, wantCode: 2, wantStderr: `talon: mark: state "done": want succeeded or failed`},
		{name: "bad run id", args: []string{"retry", "x1"}, wantCode: 2, wantStderr: `talon: run "x1": want a run id (a positive integer)`},
		{name: "bad output", args: []string{"-o", "yaml", "jobs"}, wantCode: 2, wantStderr: `talon: -o "yaml": want table or json`},
		{name: "unknown run", args: []string{"show", "999"}, wantCode: 1, wantStderr: "talon: run 999 not found"},
		{name: "conflict", args: []string{"retry", "3"}, wantCode: 1, wantStderr: "talon: run 3 is blocked: only failed or skipped runs can be retried"},
		{name: "unreachable", args: []string{"jobs"}, env: map[string]string{"TALON_URL": dead}, wantCode: 1,
			wantStderr: "talon: cannot reach talon at " + dead + ": connection refused"},
		{name: "long expression cut", args: []string{"calendar", strings.Repeat("every 15 minutes, ", 5000) + "every 15 minuts"}, wantCode: 1,
			wantStderr: `talon: "` + strings.Repeat("every 15 minutes, ", 5)[:79] + `…" at column 90010: unknown unit "minuts"; want minutes or hours (did you mean "minutes"?)`},
		{name: "server flag over env", args: []string{"--server", hs.URL, "jobs"}, env: map[string]string{"TALON_URL": dead}, wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"TALON_URL": hs.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			g := &globals{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }, loc: time.UTC}
			code := g.run(t.Context(), tt.args)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if tt.wantStderr != "" && !slices.Contains(strings.Split(stderr.String(), "\n"), tt.wantStderr) {
				t.Errorf("stderr lacks the line %q:\n%s", tt.wantStderr, stderr.String())
			}
			if tt.wantCode == 0 && stderr.Len() > 0 {
				t.Errorf("stderr on success:\n%s", stderr.String())
			}
		})
	}
}

func TestNearest(t *testing.T) {
	t.Parallel()
	names := []string{"extract", "load-sales", "load-stock", "report"}
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{name: "typo", input: "extrct", want: []string{"extract"}},
		{name: "swap", input: "reprot", want: []string{"report"}},
		{name: "part", input: "sales", want: []string{"load-sales"}},
		{name: "both close", input: "load-s", want: []string{"load-sales", "load-stock"}},
		{name: "case", input: "EXTRACT", want: []string{"extract"}},
		{name: "nothing near", input: "zzz", want: []string{}},
		{name: "exact is not a suggestion", input: "report", want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := nearest(tt.input, names); !slices.Equal(got, tt.want) {
				t.Errorf("nearest(%q) = %q, want %q", tt.input, got, tt.want)
			}
		})
	}
}

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{name: "negative", in: -time.Second, want: "-"},
		{name: "millis", in: 250 * time.Millisecond, want: "250ms"},
		{name: "seconds", in: 8*time.Second + 400*time.Millisecond, want: "8s"},
		{name: "whole minutes", in: 12 * time.Minute, want: "12m"},
		{name: "minutes and seconds", in: 2*time.Minute + 30*time.Second, want: "2m30s"},
		{name: "hours", in: 90*time.Minute + 20*time.Second, want: "1h30m"},
		{name: "whole hours", in: 2 * time.Hour, want: "2h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fmtDuration(tt.in); got != tt.want {
				t.Errorf("fmtDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRunErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantMsg  string
		wantHint string
	}{
		{name: "server says not found", err: talon.Errorf(talon.ENOTFOUND, "run 9 not found"), wantMsg: "run 9 not found", wantHint: "talon runs"},
		{name: "server says it otherwise", err: talon.Errorf(talon.ENOTFOUND, "not found"), wantMsg: "run 9 not found", wantHint: "talon runs"},
		{name: "something of the run", err: talon.Errorf(talon.ENOTFOUND, "run 9 has no log: it never started (blocked)"), wantMsg: "run 9 has no log: it never started (blocked)"},
		{name: "conflict", err: talon.Errorf(talon.ECONFLICT, "run 9 is succeeded"), wantMsg: "run 9 is succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := runErr(9, tt.err)
			if err.Error() != tt.wantMsg {
				t.Errorf("message = %q, want %q", err, tt.wantMsg)
			}
			var he *hintError
			hint := ""
			if errors.As(err, &he) {
				hint = he.hint
			}
			if hint != tt.wantHint {
				t.Errorf("hint = %q, want %q", hint, tt.wantHint)
			}
		})
	}
}

// TestQuickStartHint keeps the hint a user gets when no server answers in
// step with the README: the command it suggests is the quick start's.
func TestQuickStartHint(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	serve, ok := strings.CutPrefix(quickStartHint, "talon ")
	if !ok {
		t.Fatalf("hint %q does not start with talon", quickStartHint)
	}
	if !strings.Contains(string(readme), "go run ./cmd/talon "+serve) {
		t.Errorf("the README's quick start does not run %q, which the hint suggests", serve)
	}
}
