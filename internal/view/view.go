// Package view holds what Talon shows of its state: the read models the
// API answers with (a job as loaded, a run with why it is where it is,
// the resource tree in use, a period's runs) and the filters its list
// routes take. The query service builds them over the store; the HTTP
// handlers, the Go client, the CLI and the dashboard all speak them, so
// no store type crosses the API and the scheduler's loop returns none.
//
// Their JSON field names are the API's wire format: `talon … -o json`
// prints them as they are, so a change here is a change of contract.
//
// A type that is Talon's vocabulary, used by the loop and stored as it
// is (a run, a pause, an artifact, a trigger request), lives in the root
// package instead; these are shapes of answers, made for reading.
package view

import (
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
)

// JobInfo describes one job of the loaded schedule.
type JobInfo struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Period      string   `json:"period"`
	Calendar    string   `json:"calendar,omitempty"`
	Timezone    string   `json:"timezone"`
	Environment string   `json:"environment,omitempty"`
	Group       string   `json:"group,omitempty"`
	Executor    string   `json:"executor"`
	Triggers    []string `json:"triggers"`
	Constraints []string `json:"constraints"`
	// Next is the next time-trigger fire (RFC 3339), if any.
	Next string `json:"next,omitempty"`
	// Errors says why a trigger stopped firing (a business calendar that
	// ends before its next fire), so operators see it.
	Errors []string `json:"errors,omitempty"`
	// Paused says who paused the job, when and why; absent when it is
	// not paused.
	Paused *talon.Pause `json:"paused,omitempty"`
}

// RunDetail is a run with why it is where it is.
type RunDetail struct {
	talon.Run
	Decisions []talon.Decision `json:"decisions"`
	Events    []talon.Event    `json:"events"`
	// Resources is what the run holds or waits for; nil when its job
	// asks for none.
	Resources *RunResources `json:"resources,omitempty"`
}

// RunResources is what one run holds and wants.
type RunResources struct {
	Wants []resource.Request `json:"wants"`
	// Held is what the run holds now; for a finished run, what it held
	// (released when it ended).
	Held []resource.Hold `json:"held"`
	// Waiting is why the run waits in the resource queue, if it does.
	Waiting string `json:"waiting,omitempty"`
}

// ResourcesView is the resource tree with its use: GET /api/v1/resources.
type ResourcesView struct {
	Resources []ResourceInfo `json:"resources"`
	// Waiters is the resource queue, in the order it is served.
	Waiters []resource.Waiter `json:"waiters"`
}

// ResourceInfo is one node of the tree with its use.
type ResourceInfo struct {
	resource.Node
	// Declared is false for a node a reload removed while runs held it.
	Declared bool `json:"declared"`
	Used     int  `json:"used"`
	// Holders are the holds counted now.
	Holders []resource.Hold `json:"holders"`
	// Waiting lists the queued runs that could be served by this node.
	Waiting []int64 `json:"waiting"`
	// Periods is, for a consumable node, the units used in each period.
	Periods map[string]int `json:"periods,omitempty"`
}

// PeriodInfo is one (period, job) that has runs: its run counts by state
// and its latest run (GET /api/v1/periods).
type PeriodInfo struct {
	Period    string              `json:"period"`
	Job       string              `json:"job"`
	Counts    map[talon.State]int `json:"counts"`
	LatestRun int64               `json:"latest_run"`
	Latest    talon.State         `json:"latest"`
}

// RunFilter selects runs, newest first. Zero fields match everything; a
// zero Limit means no limit (the API always sets one).
type RunFilter struct {
	Job    string
	Period string // a period key, environment included
	States []talon.State
	// BeforeID pages: only runs with a smaller id.
	BeforeID int64
	Limit    int
}

// PeriodFilter selects periods that have runs, newest first. Limit counts
// periods, not (period, job) rows.
type PeriodFilter struct {
	Job string
	// Before pages: only periods whose key sorts before it (the last
	// period of the previous page).
	Before string
	Limit  int
}

// ArtifactFilter selects artifacts, newest first.
type ArtifactFilter struct {
	Job    string
	Period string // a period key, environment included
	// BeforeID pages: only artifacts with a smaller id.
	BeforeID int64
	Limit    int
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Since time.Time // entries at or after
	Actor string
	// BeforeID pages: only entries with a smaller id.
	BeforeID int64
	Limit    int
}

// AgentInfo is a remote agent (talon agent) as the API shows it.
type AgentInfo struct {
	Name string `json:"name"`
	// State is "connected" while its lease holds, "gone" once it ran out.
	State  string            `json:"state"`
	Slots  int               `json:"slots"`
	Used   int               `json:"used"` // slots held by runs now
	Labels map[string]string `json:"labels,omitempty"`
	Host   string            `json:"host,omitempty"`
	// Version is the agent's talon version; RegisteredBy the name of
	// the token it registered with.
	Version      string `json:"version,omitempty"`
	RegisteredBy string `json:"registered_by,omitempty"`
	// Registered, Heartbeat and Expires are the database's clock: when
	// this session of the agent registered, its last heartbeat, and when
	// its lease runs out.
	Registered time.Time `json:"registered"`
	Heartbeat  time.Time `json:"heartbeat"`
	Expires    time.Time `json:"expires"`
	// Runs are the runs it has, not ended.
	Runs []int64 `json:"runs"`
}

// Agent states.
const (
	AgentConnected = "connected"
	AgentGone      = "gone"
)
