package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
	"github.com/talonhq/talon/internal/store"
)

// AddArtifact records an artifact of a run, through the API.
func (e *Engine) AddArtifact(ctx context.Context, id int64, url, name string) (talon.Artifact, error) {
	a, err := e.addArtifact(ctx, id, url, name)
	var te *talon.Error
	if errors.As(err, &te) {
		return a, err
	}
	return a, e.reportErr(ctx, err, id, "artifacts")
}

// addArtifact checks and records an artifact of a run, whichever way it
// came (the API, an output line). An artifact without a name takes the
// name of the job's declared artifact whose pattern its URL matches.
// Runs waiting for artifacts are checked at the next step.
func (e *Engine) addArtifact(ctx context.Context, id int64, url, name string) (talon.Artifact, error) {
	// A run's secrets never reach the store, whichever way it reports.
	if m := e.masker(id); m != nil {
		url, name = m.Replace(url), m.Replace(name)
	}
	if err := artifact.CheckURL(url); err != nil {
		return talon.Artifact{}, talon.Errorf(talon.EINVALID, "%v", err)
	}
	if err := artifact.CheckName(name); err != nil {
		return talon.Artifact{}, talon.Errorf(talon.EINVALID, "%v", err)
	}
	if name == "" {
		name = e.declaredName(ctx, id, url)
	}
	a, err := e.st.AddArtifact(ctx, id, url, name, e.now())
	if err != nil {
		return a, err
	}
	e.mu.Lock()
	e.arrived = true
	e.mu.Unlock()
	e.Kick()
	return a, nil
}

// declaredName is the name of the declared artifact of run id's job
// that url is, or "".
func (e *Engine) declaredName(ctx context.Context, id int64, url string) string {
	p := e.sched.Load()
	if !p.declares {
		return ""
	}
	runs, err := e.st.ListRuns(ctx, store.RunFilter{IDs: []int64{id}})
	if err != nil || len(runs) == 0 {
		return "" // the add that follows says what is wrong
	}
	j := p.jobs[runs[0].Job]
	if j == nil {
		return ""
	}
	for _, d := range j.Declared {
		if g, err := d.Pattern.Expand(runs[0].Period); err == nil && g.Match(url) {
			return d.Name
		}
	}
	return ""
}

// missingArtifacts is what a succeeded run's reason gains when it did not
// add every artifact its job declares: "; declared artifact report not
// added". The run stays succeeded; the reason is how it is flagged. An
// artifact counts when it has the declared name or its URL matches the
// declared pattern.
func (e *Engine) missingArtifacts(ctx context.Context, p *plan, r talon.Run) string {
	j := p.jobs[r.Job]
	if j == nil || len(j.Declared) == 0 {
		return ""
	}
	as, err := e.st.ListArtifacts(ctx, store.ArtifactFilter{RunID: r.ID})
	if err != nil {
		e.log.Warn("check declared artifacts", "run", r.ID, "err", err)
		return "; declared artifacts not checked: " + err.Error()
	}
	var missing []string
	for _, d := range j.Declared {
		g, gerr := d.Pattern.Expand(r.Period)
		found := false
		for _, a := range as {
			if a.Name == d.Name || gerr == nil && g.Match(a.URL) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, d.Name)
		}
	}
	switch len(missing) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("; declared artifact %s not added", missing[0])
	}
	return fmt.Sprintf("; declared artifacts %s not added", strings.Join(missing, ", "))
}
