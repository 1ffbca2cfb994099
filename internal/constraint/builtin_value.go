package constraint

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/suggest"
)

// This file holds the helpers the built-in factories share to read the
// plain Go values that YAML decodes to, so every kind words its errors
// the same way: "KIND: want WHAT, got VALUE".

// describe names a schedule value the way a user wrote it: strings
// quoted, numbers as numbers, containers by their shape.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nothing"
	case string:
		return suggest.Quote(v)
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(v)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("a %T", v)
}

// wantError is the compile error of every built-in kind.
func wantError(kind, want string, got any) error {
	return fmt.Errorf("%s: want %s, got %s", kind, want, describe(got))
}

// asInt reads an integer; JSON-decoded values arrive as float64, so an
// integral float is accepted too.
func asInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int64:
		if v < math.MinInt || v > math.MaxInt {
			return 0, false
		}
		return int(v), true
	case uint64:
		if v > math.MaxInt {
			return 0, false
		}
		return int(v), true
	case float64:
		if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
			return 0, false
		}
		return int(v), true
	}
	return 0, false
}

// asDuration reads "30s"-style strings, or a number of seconds.
func asDuration(v any) (time.Duration, bool) {
	switch v := v.(type) {
	case string:
		d, err := time.ParseDuration(v)
		return d, err == nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v > float64(math.MaxInt64)/float64(time.Second) {
			return 0, false
		}
		return time.Duration(v * float64(time.Second)), true
	}
	if n, ok := asInt(v); ok {
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// checkKeys rejects keys of m that are not in allowed, naming them all.
func checkKeys(kind string, m map[string]any, allowed ...string) error {
	var unknown []string
	for k := range m {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	word := "key"
	if len(unknown) > 1 {
		word = "keys"
	}
	return fmt.Errorf("%s: unknown %s %s (want %s)", kind, word, strings.Join(unknown, ", "), strings.Join(allowed, ", "))
}

// asAction reads an action among the allowed ones.
func asAction(kind, key string, v any, allowed ...talon.Action) (talon.Action, error) {
	s, ok := v.(string)
	if ok {
		for _, a := range allowed {
			if talon.Action(s) == a {
				return a, nil
			}
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", wantError(kind+": "+key, strings.Join(names, " or "), v)
}

// runJob and runPeriod name the checked run's job and period key, falling
// back to the job and period of the input when the run row lacks them.
func runJob(in Input) string {
	if in.Run.Job != "" {
		return in.Run.Job
	}
	if in.Job != nil {
		return in.Job.Name
	}
	return ""
}

func runPeriod(in Input) string {
	if in.Run.Period != "" {
		return in.Run.Period
	}
	return in.Period.Key()
}

// formatCounts lists the non-zero counts in the order of a run's life:
// "1 running, 2 blocked" becomes "2 blocked, 1 running".
func formatCounts(c Counts) string {
	var parts []string
	for _, s := range talon.States {
		if n := c[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "no run yet"
	}
	return strings.Join(parts, ", ")
}

// formatWait writes a wait as a person would say it: "1h12m", "45s".
// It rounds up, so "in 0s" never appears while a run is still blocked.
func formatWait(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Minute {
		return (d + time.Second - 1).Truncate(time.Second).String()
	}
	s := strings.TrimSuffix((d + time.Minute - 1).Truncate(time.Minute).String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
