package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/trigger"
)

// everyHour is a trigger kind a program embedding Talon might add.
type everyHour struct{}

func (everyHour) Next(after time.Time) time.Time { return after.Truncate(time.Hour).Add(time.Hour) }

func TestTriggerKinds(t *testing.T) {
	trigger.Register("test-hourly", func(expr string, _ trigger.Options) (trigger.Trigger, error) {
		return everyHour{}, nil
	})
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "s.yaml", []byte(`
jobs:
  a:
    command: [x]
    triggers: [{kind: test-hourly, schedule: "anything"}, {kind: time, schedule: "@daily"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	j := s.ByName["a"]
	if j.Triggers[0].Kind != "test-hourly" || j.Triggers[0].ID != "test-hourly:anything" || j.Triggers[1].Kind != "" {
		t.Errorf("triggers %+v", j.Triggers)
	}
	if _, ok := j.Times[0].(everyHour); !ok {
		t.Errorf("trigger 0 is %T, want the registered kind", j.Times[0])
	}
	_, err = schedule.LoadBytes(schedule.Options{Executors: []string{"local"}}, "s.yaml", []byte(`
jobs:
  a:
    command: [x]
    triggers: [{kind: nope, schedule: "x"}]
`))
	if err == nil || !strings.Contains(err.Error(), `s.yaml:5:`) || !strings.Contains(err.Error(), `unknown trigger kind "nope"`) {
		t.Errorf("unknown kind: %v", err)
	}
}
