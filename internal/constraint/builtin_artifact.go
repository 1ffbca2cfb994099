package constraint

import (
	"context"
	"fmt"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
)

func init() {
	Register("artifact", newArtifact)
}

// ArtifactWaiter is implemented by constraints whose answer can change
// when an artifact is added, so the engine re-checks their runs the
// moment one is, rather than at the next poll.
type ArtifactWaiter interface {
	WaitsForArtifacts() bool
}

// wanted is one artifact an artifact constraint waits for.
type wanted struct {
	pattern artifact.Pattern
	// job, when set, is the job that must have produced it, and the
	// period is that job's (as after finds it); otherwise any job's
	// artifact of the run's own period counts.
	job    string
	offset int
}

// artifactWait blocks a run until, for each pattern, an artifact whose
// URL matches it exists in the period: the run's own period, or with
// job: the named job's same or previous period. Artifacts are tied to
// the period of the run that added them.
type artifactWait struct {
	want []wanted
}

const artifactWant = `a URL pattern like "s3://bucket/{{period}}/*.csv", {url: PATTERN, job: NAME, period: same|previous}, or a list of them`

func newArtifact(v any) (Constraint, error) {
	want, err := readItems("artifact", artifactWant, "pattern", v, readWanted)
	if err != nil {
		return nil, err
	}
	return artifactWait{want: want}, nil
}

func readWanted(v any) (wanted, error) {
	var w wanted
	var raw string
	switch v := v.(type) {
	case string:
		raw = v
	case map[string]any:
		if err := checkKeys("artifact", v, "url", "job", "period"); err != nil {
			return w, err
		}
		u, ok := v["url"].(string)
		if !ok {
			return w, wantError("artifact: url", "a URL pattern", v["url"])
		}
		raw = u
		if j, ok := v["job"]; ok {
			js, ok := j.(string)
			if !ok || strings.TrimSpace(js) == "" {
				return w, wantError("artifact: job", "a job name", j)
			}
			w.job = strings.TrimSpace(js)
		}
		if p, ok := v["period"]; ok {
			switch p {
			case string(talon.PeriodSame):
			case string(talon.PeriodPrevious):
				w.offset = -1
			default:
				return w, wantError("artifact: period", "same or previous", p)
			}
		}
	default:
		return w, wantError("artifact", artifactWant, v)
	}
	p, err := artifact.ParsePattern(raw)
	if err != nil {
		return w, fmt.Errorf("artifact: %v", err)
	}
	w.pattern = p
	return w, nil
}

func (artifactWait) Name() string { return "artifact" }

func (artifactWait) WaitsForArtifacts() bool { return true }

// Check passes when every pattern has a matching artifact; otherwise it
// blocks and says what it waits for. A re-check comes from the engine
// when an artifact is added, and at the latest at the poll.
func (a artifactWait) Check(ctx context.Context, in Input) Answer {
	var waiting, found []string
	for _, w := range a.want {
		ok, reason := w.check(ctx, in)
		if ok {
			found = append(found, reason)
		} else {
			waiting = append(waiting, reason)
		}
	}
	if len(waiting) > 0 {
		return Answer{Action: talon.ActionBlock, Reason: strings.Join(waiting, "; ")}
	}
	return Answer{Action: talon.ActionPass, Reason: strings.Join(found, "; ")}
}

func (w wanted) check(ctx context.Context, in Input) (bool, string) {
	if in.Lookup == nil {
		return false, fmt.Sprintf("waiting for %s: no lookup of artifacts", w.pattern)
	}
	key := runPeriod(in)
	if w.job != "" || w.offset != 0 {
		// The period is found as after finds its upstream's.
		job := w.job
		if job == "" {
			job = in.Run.Job
		}
		var err error
		if key, err = (upstream{job: job, offset: w.offset}).periodKey(ctx, in); err != nil {
			return false, fmt.Sprintf("waiting for %s: %v", w.pattern, err)
		}
	}
	g, err := w.pattern.Expand(key)
	if err != nil {
		return false, fmt.Sprintf("waiting for %s: %v", w.pattern, err)
	}
	of := ""
	if w.job != "" {
		of = " of " + w.job
	}
	as, err := in.Lookup.Artifacts(ctx, w.job, key)
	if err != nil {
		return false, fmt.Sprintf("waiting for %s%s in %s: list artifacts: %v", g, of, key, err)
	}
	// The oldest match is named, so the reason stays put as more arrive.
	var match *talon.Artifact
	for i := range as {
		if g.Match(as[i].URL) && (match == nil || as[i].ID < match.ID) {
			match = &as[i]
		}
	}
	if match == nil {
		return false, fmt.Sprintf("waiting for an artifact%s matching %s in %s", of, g, key)
	}
	return true, fmt.Sprintf("%s added by run %d of %s", match.URL, match.RunID, match.Job)
}
