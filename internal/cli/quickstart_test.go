package cli

import (
	"testing"
	"time"

	"github.com/talonhq/talon/internal/schedule"
)

// TestQuickStartIsReadable keeps the quick start something a newcomer can
// follow: its time triggers fire at most once a day, so `talon runs`
// shows the chain the README describes rather than a new run every
// minute burying it.
func TestQuickStartIsReadable(t *testing.T) {
	t.Parallel()
	s, err := schedule.Load(offlineOptions(), "../../examples/quickstart.yaml")
	if err != nil {
		t.Fatalf("the quick start does not load: %v", err)
	}
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) // a Monday
	for _, j := range s.Jobs {
		for i, tr := range j.Times {
			if tr == nil {
				continue
			}
			perDay := map[string]int{}
			for at := tr.Next(start); !at.IsZero() && at.Before(start.AddDate(0, 0, 7)); at = tr.Next(at) {
				day := at.Format(time.DateOnly)
				if perDay[day]++; perDay[day] > 1 {
					t.Fatalf("job %s: trigger %q fires more than once on %s; the quick start's output would bury the chain it shows",
						j.Name, j.Triggers[i].Schedule, day)
				}
			}
		}
	}
}
