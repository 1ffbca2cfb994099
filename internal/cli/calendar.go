package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/calendar"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/suggest"
	"github.com/talonhq/talon/internal/trigger"
)

// Fire is one row of `talon calendar -o json`.
type Fire struct {
	Time   string `json:"time"`   // RFC 3339, UTC
	Local  string `json:"local"`  // RFC 3339 with the zone's offset
	Period string `json:"period"` // the period the fire belongs to
}

func newCalendarCmd(g *globals) *cobra.Command {
	var (
		tz, after, sched, period string
		n                        int
		explain                  bool
	)
	cmd := &cobra.Command{
		Use:   "calendar [--tz ZONE] [--after RFC3339] [-n N] [--schedule FILE] EXPR",
		Short: "Print the next fires of a trigger expression (offline)",
		Example: `  talon calendar "30 6 * * 1-5" --tz Europe/London
  talon calendar -n 20 --after 2026-12-24T00:00:00Z "0 7 * * *"
  talon calendar --explain "every 15 minutes between 7-10am, hourly until 4pm"`,
		Args: argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			expr := args[0]
			loc := time.UTC
			if tz != "" {
				l, err := time.LoadLocation(tz)
				if err != nil {
					return usagef("--tz %q: unknown zone (want an IANA name like Europe/London)", tz)
				}
				loc = l
			}
			from := time.Now()
			if after != "" {
				t, err := time.Parse(time.RFC3339, after)
				if err != nil {
					return usagef("--after %q: want an RFC 3339 time like 2026-11-26T06:00:00Z", after)
				}
				from = t
			}
			if n < 1 || n > 10000 {
				return usagef("-n %d: want 1 to 10000", n)
			}
			pt := talon.PeriodType(period)
			if pt == talon.Oneshot || !validPeriodType(pt) {
				return usagef("--period %q: want hourly, daily, weekly, monthly, quarterly or yearly", period)
			}
			opt := trigger.Options{Location: loc}
			if sched != "" {
				s, err := schedule.Load(offlineOptions(), sched)
				if err != nil {
					return g.printList(err, "calendar")
				}
				opt.Calendars = s.Calendars
			}
			trig, err := trigger.Parse(expr, opt)
			if err != nil {
				var te *trigger.Error
				if errors.As(err, &te) {
					return fmt.Errorf("%s at column %d: %s", suggest.Quote(expr), te.Offset+1, te.Error())
				}
				return err
			}
			if explain {
				ex, ok := trig.(interface{ Explain() string })
				if !ok {
					return errors.New("this build cannot explain triggers")
				}
				fmt.Fprintln(g.stdout, ex.Explain())
				return nil
			}
			zone := loc
			if l, ok := trig.(interface{ Location() *time.Location }); ok && l.Location() != nil {
				zone = l.Location()
			}
			// The PERIOD column is what the engine would create for a job
			// of this period type in --tz: the same function decides it,
			// from the fire's business date (an adjusted fire keeps its
			// date's period, a window across midnight its first day's).
			periods := calendar.Periods{Type: pt, Location: loc}
			fires := []Fire{}
			for at := from; len(fires) < n; {
				f, err := trigger.NextFire(trig, at)
				if err != nil {
					if len(fires) == 0 {
						return err
					}
					fmt.Fprintf(g.stderr, "talon: stopped after %d fires: %v\n", len(fires), err)
					break
				}
				if f.At.IsZero() {
					break
				}
				key := "?"
				if per, err := f.Period(periods, talon.PeriodSame); err == nil {
					key = per.Key()
				}
				fires = append(fires, Fire{Time: f.At.UTC().Format(time.RFC3339), Local: f.At.In(zone).Format(time.RFC3339), Period: key})
				at = f.At
			}
			if g.json() {
				return g.printJSON(fires)
			}
			if len(fires) == 0 {
				fmt.Fprintln(g.stdout, "no fires after", from.Format(time.RFC3339))
				return nil
			}
			w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LOCAL\tUTC\tDAY\tPERIOD")
			for _, f := range fires {
				lt, _ := time.Parse(time.RFC3339, f.Local)
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Local, f.Time, lt.Weekday().String()[:3], f.Period)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&tz, "tz", "", "zone of the expression when it names none (default UTC)")
	f.StringVar(&after, "after", "", "list fires after this instant (RFC 3339; default now)")
	f.IntVarP(&n, "count", "n", 10, "how many fires")
	f.StringVar(&sched, "schedule", "", "schedule file whose calendars the expression may use")
	f.StringVar(&period, "period", "daily", "period type the PERIOD column shows")
	f.BoolVar(&explain, "explain", false, "print the expression's rules as understood instead of fires")
	return cmd
}

func validPeriodType(t talon.PeriodType) bool {
	for _, v := range talon.PeriodTypes {
		if v == t {
			return true
		}
	}
	return false
}
