package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/view"
)

// watchRuns is talon runs --watch: the event stream is opened first, so
// no change between the list and the first line is missed (one may show
// in both). With resume, the changes after event id after come first.
func (g *globals) watchRuns(ctx context.Context, f view.RunFilter, after int64, resume bool) error {
	q := api.EventQuery{After: after, Resume: resume}
	if f.Job != "" {
		q.Jobs = []string{f.Job}
	}
	stream, err := g.api().Events(ctx, q)
	if err != nil {
		return err
	}
	defer stream.Close()
	stream.OnReconnect = func(err error) {
		fmt.Fprintf(g.stderr, "talon: event stream interrupted (%v); reconnecting\n", err)
	}
	if !g.json() {
		runs, err := g.api().Runs(ctx, f)
		if err != nil {
			return err
		}
		g.printRuns(runs)
	}
	for {
		e, err := stream.Next()
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil // interrupted: the normal end of a watch
			}
			return err
		}
		if f.Period != "" && e.Period != f.Period {
			continue
		}
		if g.json() {
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode json: %w", err)
			}
			if _, err := fmt.Fprintf(g.stdout, "%s\n", b); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(g.stdout, g.fmtEvent(e))
	}
}

// fmtEvent reads one event on one line:
// "2026-11-26T07:30:02+01:00  run 12  load  daily/2026-11-26  blocked → ready: all constraints pass".
func (g *globals) fmtEvent(e talon.Event) string {
	var what string
	switch e.Type {
	case talon.EventProgress:
		what = "progress"
		if e.Progress != nil {
			what += " " + fmtProgress(*e.Progress)
		}
	case talon.EventArtifact:
		what = "artifact"
		if e.Artifact != nil {
			what += " " + e.Artifact.URL
		}
	case talon.EventDecision:
		what = string(e.To)
	default:
		from := "new"
		if e.From != "" {
			from = string(e.From)
		}
		what = from + " → " + string(e.To)
	}
	if e.Reason != "" && e.Type != talon.EventProgress {
		what += ": " + oneLine(e.Reason)
	}
	return g.fmtDetail(e.Time) + "  run " + strconv.FormatInt(e.RunID, 10) + "  " + e.Job + "  " + e.Period + "  " + what
}
