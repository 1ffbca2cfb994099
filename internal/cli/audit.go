package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

func newAuditCmd(g *globals) *cobra.Command {
	var (
		f     view.AuditFilter
		since string
		all   bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show who triggered, cancelled, retried, marked, paused, resumed or reloaded what, and when (admins)",
		Long: `Show the audit, newest first: every trigger, cancel, retry, mark, pause,
resume and reload (and bulk cancel and retry) the server served, with who
asked, from which address, when, and how it ended. Reading it needs the
admin role.`,
		Example: `  talon audit --since 24h
  talon audit --actor alice --since 2026-11-26T00:00:00Z --all`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				f.Since = t
			}
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", f.Limit)
			}
			entries, err := pages(all, f.Limit, &f.BeforeID, func(a talon.AuditEntry) int64 { return a.ID },
				func() ([]talon.AuditEntry, error) { return g.api().Audit(cmd.Context(), f) })
			if err != nil {
				return err
			}
			if g.json() {
				if entries == nil {
					entries = []talon.AuditEntry{}
				}
				return g.printJSON(entries)
			}
			w := g.table()
			row(w, "ID", "TIME", "ACTOR", "ACTION", "OBJECT", "OUTCOME", "DETAIL", "FROM")
			for _, a := range entries {
				row(w, strconv.FormatInt(a.ID, 10), g.fmtTime(a.Time), a.Actor, a.Action, orDash(a.Object),
					oneLine(a.Outcome), orDash(oneLine(a.Detail)), orDash(a.Remote))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only entries since this time (RFC 3339) or this long ago (e.g. 24h, 7d)")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only entries of this caller")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many entries (1 to 1000); with --all, per request")
	cmd.Flags().BoolVar(&all, "all", false, "every matching entry, following the pages")
	return cmd
}

// parseSince reads an RFC 3339 time, or a duration ago ("90m", "24h",
// "7d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, nerr := strconv.Atoi(days)
		if nerr == nil && n >= 0 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, usagef("--since %q: want an RFC 3339 time (2026-11-26T08:00:00Z) or a duration ago (90m, 24h, 7d)", s)
	}
	return now.Add(-d), nil
}
