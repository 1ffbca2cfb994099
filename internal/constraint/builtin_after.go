package constraint

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon"
)

func init() {
	Register("after", newAfter)
}

// Dependent is implemented by constraints that wait for other jobs, so
// the schedule loader can check that those jobs exist and the engine can
// re-check a run when one of them changes.
type Dependent interface {
	// Upstreams names the jobs the constraint waits for, without
	// duplicates, in the order written.
	Upstreams() []string
}

// UpstreamPeriod is one period a constraint waits on: of job Job, the
// period Offset from the run's (0 the same, -1 the previous).
type UpstreamPeriod struct {
	Job    string
	Offset int
}

// PeriodDependent is implemented by constraints that know which periods
// of their upstreams they read, so the engine fetches those only.
type PeriodDependent interface {
	UpstreamPeriods() []UpstreamPeriod
}

// Upstreams returns the jobs c waits for, or nil when c waits for none.
func Upstreams(c Constraint) []string {
	if d, ok := c.(Dependent); ok {
		return d.Upstreams()
	}
	return nil
}

// upstream is one job an after constraint waits for.
type upstream struct {
	job string
	// offset moves the period: 0 the same period, -1 the previous one.
	offset int
	// onFailure answers when the upstream failed for good.
	onFailure talon.Action
}

// after blocks a run until each upstream job has a succeeded run in the
// same (or the previous) period. An upstream has "failed for good" when
// it has a failed run and no blocked, ready or running one left; then
// the answer is the upstream's on_failure action (block by default, so
// an operator's retry of the upstream can still unblock the run).
type after struct {
	ups []upstream
}

const afterWant = `a job name, or a list of job names and {job: NAME, period: same|previous, on_failure: block|fail|cancel}`

func newAfter(v any) (Constraint, error) {
	ups, err := readItems("after", afterWant, "job", v, readUpstream)
	if err != nil {
		return nil, err
	}
	return after{ups: ups}, nil
}

// readItems reads a constraint whose value is one item (a string or a
// mapping) or a list of them, each read by read; errors of a list's
// items say which ("after[1]: …"). noun names an item in the error of an
// empty list.
func readItems[T any](key, want, noun string, v any, read func(any) (T, error)) ([]T, error) {
	var items []any
	switch v := v.(type) {
	case string, map[string]any:
		items = []any{v}
	case []any:
		items = v
	default:
		return nil, wantError(key, want, v)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: want at least one %s, got an empty list", key, noun)
	}
	out := make([]T, 0, len(items))
	for i, it := range items {
		x, err := read(it)
		if err != nil {
			if len(items) > 1 {
				return nil, fmt.Errorf("%s[%d]%s", key, i, strings.TrimPrefix(err.Error(), key))
			}
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func readUpstream(v any) (upstream, error) {
	u := upstream{onFailure: talon.ActionBlock}
	switch v := v.(type) {
	case string:
		u.job = strings.TrimSpace(v)
	case map[string]any:
		if err := checkKeys("after", v, "job", "period", "on_failure"); err != nil {
			return u, err
		}
		j, ok := v["job"].(string)
		if !ok {
			return u, wantError("after: job", "a job name", v["job"])
		}
		u.job = strings.TrimSpace(j)
		if p, ok := v["period"]; ok {
			switch p {
			case string(talon.PeriodSame):
				u.offset = 0
			case string(talon.PeriodPrevious):
				u.offset = -1
			default:
				return u, wantError("after: period", "same or previous", p)
			}
		}
		if f, ok := v["on_failure"]; ok {
			var err error
			u.onFailure, err = asAction("after", "on_failure", f, talon.ActionBlock, talon.ActionFail, talon.ActionCancel)
			if err != nil {
				return u, err
			}
		}
	default:
		return u, wantError("after", "a job name or {job: NAME, …}", v)
	}
	if u.job == "" {
		return u, fmt.Errorf("after: want a job name, got an empty string")
	}
	return u, nil
}

func (after) Name() string { return "after" }

func (a after) Upstreams() []string {
	out := make([]string, 0, len(a.ups))
	seen := map[string]bool{}
	for _, u := range a.ups {
		if !seen[u.job] {
			seen[u.job] = true
			out = append(out, u.job)
		}
	}
	return out
}

func (a after) UpstreamPeriods() []UpstreamPeriod {
	out := make([]UpstreamPeriod, 0, len(a.ups))
	seen := map[UpstreamPeriod]bool{}
	for _, u := range a.ups {
		k := UpstreamPeriod{Job: u.job, Offset: u.offset}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Check answers the strongest of the upstreams' answers; when several
// upstreams give it, their reasons are joined so the run says everything
// it waits for.
func (a after) Check(ctx context.Context, in Input) Answer {
	best := Answer{Action: talon.ActionPass}
	var reasons, passed []string
	for _, u := range a.ups {
		ans := u.check(ctx, in)
		switch {
		case ans.Action.Rank() > best.Action.Rank():
			best.Action = ans.Action
			reasons = []string{ans.Reason}
		case ans.Action == best.Action:
			reasons = append(reasons, ans.Reason)
		}
		if ans.Action == talon.ActionPass {
			passed = append(passed, ans.Reason)
		}
	}
	if best.Action == talon.ActionPass {
		reasons = passed
	}
	best.Reason = strings.Join(reasons, "; ")
	return best
}

func (u upstream) check(ctx context.Context, in Input) Answer {
	if in.Lookup == nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("waiting for %s: no lookup of other runs", u.job)}
	}
	key, err := u.periodKey(ctx, in)
	if err != nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("waiting for %s: %v", u.job, err)}
	}
	counts, err := in.Lookup.Summary(ctx, u.job, key)
	if err != nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("waiting for %s %s: count runs: %v", u.job, key, err)}
	}
	if counts[talon.StateSucceeded] > 0 {
		return Answer{Action: talon.ActionPass, Reason: fmt.Sprintf("%s succeeded in %s", u.job, key)}
	}
	left := counts[talon.StateBlocked] + counts[talon.StateReady] + counts[talon.StateRunning]
	if counts[talon.StateFailed] > 0 && left == 0 {
		return Answer{Action: u.onFailure, Reason: fmt.Sprintf("%s failed in %s and has no run left; retry it", u.job, key)}
	}
	return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("waiting for %s %s: %s", u.job, key, formatCounts(counts))}
}

// periodKey finds the upstream's period: "same" is the upstream's period
// that contains the last instant of the run's period, and "previous" the
// one before that. For jobs of one period type that is the same and the
// previous period; a weekly report waits for the load of the week's last
// day (and with "previous" for the day before it); a daily job waits for
// the monthly job of its month. A oneshot period has no bounds to look
// up, so "same" means the run's own key and "previous" has none.
func (u upstream) periodKey(ctx context.Context, in Input) (string, error) {
	if in.Period.Start.IsZero() || in.Period.Type == talon.Oneshot {
		if u.offset != 0 {
			return "", fmt.Errorf("oneshot period %s has no previous period", runPeriod(in))
		}
		return runPeriod(in), nil
	}
	at := in.Period.Start
	if in.Period.End.After(at) {
		at = in.Period.End.Add(-time.Nanosecond)
	}
	key, err := in.Lookup.PeriodKey(ctx, u.job, at, u.offset)
	if err != nil {
		return "", fmt.Errorf("find period: %w", err)
	}
	return key, nil
}
