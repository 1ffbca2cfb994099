package store

import "github.com/talonhq/talon"

// AddPeriodRow folds one (period, job, state) count, with the newest run
// id of that state, into rows, which arrive grouped by (period, job). The
// row's Latest is the state of its newest run. Both stores build
// ListPeriods with it.
func AddPeriodRow(rows []PeriodRow, period, job string, state talon.State, n int, maxID int64) []PeriodRow {
	if len(rows) == 0 || rows[len(rows)-1].Period != period || rows[len(rows)-1].Job != job {
		rows = append(rows, PeriodRow{Period: period, Job: job, Counts: Summary{}})
	}
	r := &rows[len(rows)-1]
	r.Counts[state] = n
	if maxID > r.LatestRun {
		r.LatestRun, r.Latest = maxID, state
	}
	return rows
}
