package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/talonhq/talon"
)

// TestPeriodHorizon: a trigger or backfill may name periods that start
// from 1970-01-01 to 100 years after now, as calendar dates in the job's
// zone (east of UTC, 1970-01-01 starts in 1969 UTC and is still in).
func TestPeriodHorizon(t *testing.T) {
	t.Parallel()
	b := setup(t, `
jobs:
  london:
    period: daily
    timezone: Europe/London
    executor: inprocess
    command: [noop]
  yearly:
    period: yearly
    executor: inprocess
    command: [noop]
`, mustTime(t, "2026-11-26T12:00:00Z"), nil)
	tests := []struct {
		name    string
		job     string
		period  string
		wantErr string // "" when accepted
	}{
		{name: "first day", job: "london", period: "daily/1970-01-01"},
		{name: "day before", job: "london", period: "daily/1969-12-31", wantErr: `period "daily/1969-12-31" is beyond Talon's horizon: a period must start between 1970-01-01 and 100 years from now (2126-11-26)`},
		{name: "last day", job: "london", period: "daily/2126-11-26"},
		{name: "day after", job: "london", period: "daily/2126-11-27", wantErr: "beyond Talon's horizon"},
		{name: "end of time", job: "london", period: "daily/9999-12-31", wantErr: "beyond Talon's horizon"},
		{name: "year one", job: "yearly", period: "yearly/0001", wantErr: "beyond Talon's horizon"},
		{name: "a century ahead", job: "yearly", period: "yearly/2126"},
		{name: "a year more", job: "yearly", period: "yearly/2127", wantErr: "beyond Talon's horizon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := b.e.Trigger(t.Context(), tt.job, talon.TriggerRequest{Period: tt.period})
			_, rerr := b.q.PeriodRange(t.Context(), tt.job, tt.period, tt.period)
			for what, err := range map[string]error{"Trigger": err, "PeriodRange": rerr} {
				if tt.wantErr == "" {
					if err != nil {
						t.Errorf("%s %s: %v, want it accepted", what, tt.period, err)
					}
					continue
				}
				var te *talon.Error
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &te) || te.Code != talon.EINVALID {
					t.Errorf("%s %s: %v, want invalid: %s", what, tt.period, err, tt.wantErr)
				}
			}
		})
	}
}
