// Package talon holds Talon's vocabulary: the types every other package
// speaks (Job, Period, Run, State, Action, Decision, Event, Progress,
// Artifact) and the error codes that travel to users. It imports only the
// standard library, so pure packages can depend on it without pulling in
// the engine, the store or an executor.
//
// The words are those of docs/model.md#vocabulary: a job is run for a period when a
// trigger fires; the run stays blocked until every constraint passes.
package talon

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is where a run is in its life. There are exactly six.
type State string

// The six states of a run (docs/model.md#the-life-of-a-run).
const (
	StateBlocked   State = "blocked"
	StateReady     State = "ready"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateSkipped   State = "skipped"
)

// States lists every state in the order of a run's life.
var States = []State{StateBlocked, StateReady, StateRunning, StateSucceeded, StateFailed, StateSkipped}

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateSkipped
}

// Valid reports whether s is one of the six states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// CanTransition reports whether a run may move from one state to another.
// A blocked run may be re-decided (blocked → blocked) to record a new
// decision; every other transition changes state. No transition leaves a
// terminal state: only an operator's mark does (CanMark).
func CanTransition(from, to State) bool {
	switch from {
	case StateBlocked:
		return to == StateBlocked || to == StateReady || to == StateSkipped || to == StateFailed
	case StateReady:
		// ready → blocked happens when a fenced limit (max_running, once per
		// period, resources) is found taken inside the store's transaction.
		return to == StateRunning || to == StateBlocked || to == StateSkipped || to == StateFailed
	case StateRunning:
		// running → running records a new owner when a scheduler
		// re-attaches to a run another one started.
		return to == StateRunning || to == StateSucceeded || to == StateFailed
	}
	return false
}

// Action is a constraint's answer.
type Action string

// The four actions, from weakest to strongest.
const (
	ActionPass   Action = "pass"
	ActionBlock  Action = "block"
	ActionFail   Action = "fail"
	ActionCancel Action = "cancel"
)

// Rank orders actions by precedence: cancel > fail > block > pass. A run
// that is no longer needed is skipped rather than failed.
func (a Action) Rank() int {
	switch a {
	case ActionPass:
		return 0
	case ActionBlock:
		return 1
	case ActionFail:
		return 2
	case ActionCancel:
		return 3
	}
	return -1
}

// Valid reports whether a is one of the four actions.
func (a Action) Valid() bool { return a.Rank() >= 0 }

// Combine returns the action that wins when constraints disagree.
func Combine(actions ...Action) Action {
	out := ActionPass
	for _, a := range actions {
		if a.Rank() > out.Rank() {
			out = a
		}
	}
	return out
}

// Decision is one constraint's latest answer for a run, stored so that
// operators can always see why a run waits.
type Decision struct {
	Constraint string    `json:"constraint"`
	Action     Action    `json:"action"`
	Reason     string    `json:"reason"`
	RecheckAt  time.Time `json:"recheck_at,omitzero"`
}

// Run is one attempt to do a job for a period.
type Run struct {
	ID          int64             `json:"id"`
	Job         string            `json:"job"`
	Period      string            `json:"period"`
	Environment string            `json:"environment"`
	State       State             `json:"state"`
	Attempt     int               `json:"attempt"`
	Executor    string            `json:"executor"`
	Trigger     string            `json:"trigger"`
	FireTime    time.Time         `json:"fire_time,omitzero"`
	Key         string            `json:"key,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	RetryOf     int64             `json:"retry_of,omitempty"`
	Created     time.Time         `json:"created"`
	Started     *time.Time        `json:"started"`
	Finished    *time.Time        `json:"finished"`
	Reason      string            `json:"reason"`
	Progress    *Progress         `json:"progress"`
	Artifacts   []Artifact        `json:"artifacts"`
	// RecheckAt is when the engine will look at a blocked run again at the
	// latest; zero means at the next poll.
	RecheckAt time.Time `json:"recheck_at,omitzero"`
	// Owner is the scheduler instance that dispatched a ready or running
	// run; Handle is the executor's own id for it (a pid, an SGE job id),
	// so a restarted scheduler can re-attach or declare it lost.
	Owner  string `json:"owner,omitempty"`
	Handle string `json:"handle,omitempty"`
}

// ShownProgress is the progress to show for r: its last report, except
// that a succeeded run is complete (100 %) whatever it last reported — a
// job rarely reports its own end, and "75 %, us=running" beside
// "succeeded" reads as a contradiction. Run.Progress keeps the report as
// it was.
func (r Run) ShownProgress() *Progress {
	if r.State != StateSucceeded {
		return r.Progress
	}
	done := 100.0
	p := &Progress{Percent: &done}
	if r.Progress != nil {
		p.Updated = r.Progress.Updated
	}
	return p
}

// Progress is what a running run reports about itself.
type Progress struct {
	Percent  *float64 `json:"percent,omitempty"`
	Expected Duration `json:"expected,omitzero"`
	Elapsed  Duration `json:"elapsed,omitzero"`
	Message  string   `json:"message,omitempty"`
	// ItemsDone of ItemsTotal units of work are done (rows, files,
	// partitions); ItemsTotal 0 means the total is not known.
	ItemsDone  int64          `json:"items_done,omitempty"`
	ItemsTotal int64          `json:"items_total,omitempty"`
	Items      []ProgressItem `json:"items,omitempty"`
	Updated    time.Time      `json:"updated,omitzero"`
}

// Bounds of a progress report: enough for any honest report, small
// enough that a runaway job cannot fill the store with one.
const (
	MaxProgressMessage = 4096 // bytes
	MaxProgressItems   = 10000
	MaxProgressName    = 256 // bytes, of an item's name and of its state
)

// Validate says whether p is a progress report a run may make; the
// error is an *Error with code invalid that names the field. It is the
// one statement of these rules: the CLI, the API, the engine and the
// "::talon progress" line reader all ask it.
func (p Progress) Validate() error {
	bad := func(format string, args ...any) error {
		return Errorf(EINVALID, "progress: "+format, args...)
	}
	if p.ItemsDone < 0 || p.ItemsTotal < 0 {
		return bad("items_done %d, items_total %d: want counts of zero or more", p.ItemsDone, p.ItemsTotal)
	}
	if p.ItemsTotal > 0 && p.ItemsDone > p.ItemsTotal {
		return bad("items_done %d is more than items_total %d", p.ItemsDone, p.ItemsTotal)
	}
	if p.Percent != nil {
		// NaN fails both comparisons, so it is refused too.
		if v := *p.Percent; !(v >= 0 && v <= 100) {
			return bad("percent %g: want a number from 0 to 100", v)
		}
	}
	if p.Expected < 0 {
		return bad("expected %s: want a duration of zero or more", time.Duration(p.Expected))
	}
	if p.Elapsed < 0 {
		return bad("elapsed %s: want a duration of zero or more", time.Duration(p.Elapsed))
	}
	if len(p.Message) > MaxProgressMessage {
		return bad("message of %d bytes: want at most %d", len(p.Message), MaxProgressMessage)
	}
	if len(p.Items) > MaxProgressItems {
		return bad("%d items: want at most %d", len(p.Items), MaxProgressItems)
	}
	for i, it := range p.Items {
		switch {
		case strings.TrimSpace(it.Name) == "":
			return bad("items[%d]: name is empty", i)
		case len(it.Name) > MaxProgressName:
			return bad("items[%d]: name of %d bytes: want at most %d", i, len(it.Name), MaxProgressName)
		case len(it.State) > MaxProgressName:
			return bad("items[%d] %q: state of %d bytes: want at most %d", i, it.Name, len(it.State), MaxProgressName)
		}
	}
	return nil
}

// ParseProgress reads a progress report written as text, as in
// "::talon progress …" output lines and `talon progress PERCENT`:
// "40%", "40", "40% loading partitions" (a percentage and a message), or
// "3/10" (3 of 10 items done, which is also 30 %). The result is valid
// (Validate); errors are *Error with code invalid.
func ParseProgress(s string) (Progress, error) {
	head, msg, _ := strings.Cut(strings.TrimSpace(s), " ")
	p := Progress{Message: strings.TrimSpace(msg)}
	if a, b, ok := strings.Cut(head, "/"); ok {
		done, err1 := strconv.ParseInt(a, 10, 64)
		total, err2 := strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil || total <= 0 {
			return Progress{}, Errorf(EINVALID, "progress %q: want N%% or DONE/TOTAL (whole numbers, TOTAL above 0)", s)
		}
		p.ItemsDone, p.ItemsTotal = done, total
		pct := 100 * float64(done) / float64(total)
		p.Percent = &pct
	} else {
		v, err := strconv.ParseFloat(strings.TrimSuffix(head, "%"), 64)
		if err != nil {
			return Progress{}, Errorf(EINVALID, "progress %q: want N%% or DONE/TOTAL", s)
		}
		p.Percent = &v
	}
	if err := p.Validate(); err != nil {
		return Progress{}, err
	}
	return p, nil
}

// ProgressItem is one item of a run's work, with its own state.
type ProgressItem struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Artifact is a URL produced by a run, tied to its run and period.
type Artifact struct {
	ID     int64  `json:"id"`
	RunID  int64  `json:"run"`
	Job    string `json:"job"`
	Period string `json:"period"`
	URL    string `json:"url"`
	// Name is the name the run gave it, or the job's declared artifact
	// whose URL it is; empty otherwise.
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
}

// Event is one row of the store's event feed: a transition of a run, a
// new decision about a blocked run, a progress report or an artifact.
// Transitions and decisions make up a run's history; every type travels
// on the live event stream.
type Event struct {
	ID     int64     `json:"id"`
	RunID  int64     `json:"run"`
	Time   time.Time `json:"time"`
	From   State     `json:"from,omitempty"`
	To     State     `json:"to"`
	Reason string    `json:"reason"`
	// Type says what happened; Job and Period are the run's, so a
	// consumer can filter without looking the run up. For progress and
	// artifact events, To is the state the run was in.
	Type   EventType `json:"type"`
	Job    string    `json:"job"`
	Period string    `json:"period"`
	// Progress is the report of a progress event; Artifact the artifact
	// of an artifact event.
	Progress *Progress `json:"progress,omitempty"`
	Artifact *Artifact `json:"artifact,omitempty"`
}

// EventType is the kind of an Event.
type EventType string

// The event types.
const (
	// EventTransition: the run was created, or changed state.
	EventTransition EventType = "transition"
	// EventDecision: a blocked run stays blocked with a new answer. A
	// re-check that answers the same writes no event, even when its
	// words count down to a constraint's moment.
	EventDecision EventType = "decision"
	// EventProgress: the run reported its progress.
	EventProgress EventType = "progress"
	// EventArtifact: the run recorded an artifact.
	EventArtifact EventType = "artifact"
)

// EventTypes lists every event type.
var EventTypes = []EventType{EventTransition, EventDecision, EventProgress, EventArtifact}

// TransitionEvent is the type of the event a run's move from one state
// to another writes: staying blocked is a new decision, anything else
// (including creation, from "") a transition.
func TransitionEvent(from, to State) EventType {
	if from == to {
		return EventDecision
	}
	return EventTransition
}

// Duration is a time.Duration that reads and writes as "1h30m" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration: want a string like \"90s\" or a number of seconds")
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Error codes that travel to users through the API and the CLI.
const (
	ECONFLICT    = "conflict"
	EINTERNAL    = "internal"
	EINVALID     = "invalid"
	ENOTFOUND    = "not_found"
	EUNAVAILABLE = "unavailable"
)

// Error is an error a user can act on: a code, mapped to an HTTP status in
// one place, and a message safe to show.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
