package store

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon/internal/resource"
)

// Agents are remote nodes running `talon agent`. The store keeps each
// agent's current session (one registration of one agent process) with
// a lease in the database's clock, and every run handed to an agent, so
// that any scheduler sharing the database can hand a run to any agent,
// watch it, re-attach to it after a restart, or declare it lost: the
// store, not a scheduler's memory, says whether an agent is alive.
//
// A run handed to an agent moves offered → taken → started → ended:
// offered when a scheduler hands it to the agent's session, taken when
// the agent receives it, started when the agent reports its process,
// ended with the outcome the agent reports — or with a "lost: …"
// outcome the store decides when the session that holds it is gone
// (its lease expired, or the agent registered again with a new
// session). Every move is a compare-and-set, so a late report of an
// agent never overrides a loss that was decided first, and a run is
// never both lost and succeeded.

// AgentNamespace is the resource namespace agents register under
// (resource.AgentNamespace).
const AgentNamespace = resource.AgentNamespace

// AgentPath is the resource path of the agent named name.
func AgentPath(name string) string { return AgentNamespace + "/" + name }

// AgentOf returns the name of the agent whose node path is, if it is one.
func AgentOf(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, AgentNamespace+"/")
	if !ok || !agentNameRE.MatchString(name) {
		return "", false
	}
	return name, true
}

// Agent is an agent's current session as the store knows it.
type Agent struct {
	Name string
	// Session is the random id of one start of the agent process; a
	// restarted agent registers a new one.
	Session string
	Slots   int
	Labels  map[string]string
	// Host and Version are what the agent says of itself, for people.
	Host    string
	Version string
	// By is who registered it: the name of the token it presented.
	By string
	// Registered, Heartbeat and Expires are in the database's clock:
	// when the session registered, when it last renewed its lease, and
	// when the lease runs out.
	Registered time.Time
	Heartbeat  time.Time
	Expires    time.Time
}

// Live reports whether the agent's lease holds at dbNow.
func (a Agent) Live(dbNow time.Time) bool { return dbNow.Before(a.Expires) }

// Node is the agent as a resource node.
func (a Agent) Node() resource.Node {
	return resource.Node{Path: AgentPath(a.Name), Capacity: a.Slots, Attributes: a.Labels}
}

// Limits of what an agent may register, checked by CheckAgent.
const (
	MaxAgentSlots  = 1024
	MaxAgentLabels = 64
	maxLabelValue  = 256
)

var (
	agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelKeyRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,62}$`)
)

// CheckAgentName says what is wrong with an agent name: it becomes a
// segment of a resource path.
func CheckAgentName(name string) error {
	if !agentNameRE.MatchString(name) {
		return fmt.Errorf("agent name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckAgent says what is wrong with an agent's registration.
func CheckAgent(a Agent) error {
	if err := CheckAgentName(a.Name); err != nil {
		return err
	}
	if a.Session == "" || len(a.Session) > 64 {
		return fmt.Errorf("agent %s: session id: want 1 to 64 characters", a.Name)
	}
	if a.Slots < 1 || a.Slots > MaxAgentSlots {
		return fmt.Errorf("agent %s: slots %d: want 1 to %d", a.Name, a.Slots, MaxAgentSlots)
	}
	if len(a.Labels) > MaxAgentLabels {
		return fmt.Errorf("agent %s: %d labels: want at most %d", a.Name, len(a.Labels), MaxAgentLabels)
	}
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		v := a.Labels[k]
		if !labelKeyRE.MatchString(k) {
			return fmt.Errorf("agent %s: label %q: want a name of letters, digits, '_', '.' or '-', starting with a letter or '_'", a.Name, k)
		}
		if len(v) > maxLabelValue || strings.ContainsAny(v, "\n\r\x00") {
			return fmt.Errorf("agent %s: label %s: want a value of at most %d characters on one line", a.Name, k, maxLabelValue)
		}
	}
	return nil
}

// AgentRunState is where a run handed to an agent is.
type AgentRunState string

// The states of a run handed to an agent.
const (
	AgentOffered AgentRunState = "offered"
	AgentTaken   AgentRunState = "taken"
	AgentStarted AgentRunState = "started"
	AgentEnded   AgentRunState = "ended"
)

// AgentRun is one run handed to an agent.
type AgentRun struct {
	RunID   int64
	Agent   string
	Job     string
	Session string // the session it was handed to
	State   AgentRunState
	// Spec is what the agent needs to start the run (the run's command,
	// environment and secrets), kept only until the run starts or ends.
	Spec []byte
	PID  int
	// Offered, Started and Ended are in the database's clock; Ended is
	// when the run ended, as the agent said (it reports how long ago).
	Offered time.Time
	Started time.Time
	Ended   time.Time
	// The outcome, once ended.
	Succeeded bool
	ExitCode  int
	Reason    string
	// Cancel, when set, is why a scheduler asked the agent to stop the
	// run.
	Cancel string
}

// Open reports whether the run has not ended.
func (r AgentRun) Open() bool { return r.State != AgentEnded }

// AgentOutcome is how an agent says a run ended.
type AgentOutcome struct {
	Succeeded bool
	ExitCode  int
	Reason    string
	// Ago is how long before the report the run ended, on the agent's
	// clock: the store subtracts it from its own, so no agent's clock
	// is compared with the database's.
	Ago time.Duration
}

// AgentRunFilter selects runs handed to agents. Zero fields match all.
type AgentRunFilter struct {
	IDs   []int64
	Agent string
	// Open keeps the runs that have not ended.
	Open bool
}

// AgentRetention is how long the store keeps an ended run of an agent,
// and an agent whose lease has run out, before it forgets them.
const AgentRetention = 24 * time.Hour

// EndedAgent is the ended time of a run that ended ago before dbNow,
// but never before it started (or was offered).
func EndedAgent(r AgentRun, dbNow time.Time, ago time.Duration) time.Time {
	at := dbNow.Add(-max(ago, 0))
	floor := r.Started
	if floor.IsZero() {
		floor = r.Offered
	}
	if at.Before(floor) {
		at = floor
	}
	return at.UTC().Truncate(time.Microsecond)
}

// LostAgentReason is the outcome of a run whose agent session is gone:
// the agent a, which may be another session of the same name or absent
// (nil), last heartbeated by the run's session at beat (zero unknown).
func LostAgentReason(r AgentRun, a *Agent, beat, dbNow time.Time) string {
	switch {
	case a != nil && a.Session != r.Session:
		return fmt.Sprintf("lost: agent %s registered again (a new session), so the run it had died with it", r.Agent)
	case beat.IsZero():
		return fmt.Sprintf("lost: agent %s is gone", r.Agent)
	}
	return fmt.Sprintf("lost: agent %s missed its heartbeats (the last one %s ago)", r.Agent, dbNow.Sub(beat).Round(time.Second))
}

// AgentConflict is the error of a registration refused because another
// session holds the name.
func AgentConflict(cur Agent, dbNow time.Time) error {
	return fmt.Errorf("agent %s is already connected (session %s from %s, last heartbeat %s ago; its lease runs out in %s): stop it, or give this one another --name: %w",
		cur.Name, cur.Session, orUnknown(cur.Host), dbNow.Sub(cur.Heartbeat).Round(time.Second), cur.Expires.Sub(dbNow).Round(time.Second), ErrConflict)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown host"
	}
	return s
}

// AgentTrees builds resource trees with the live agents' nodes added to
// a schedule's tree, reusing the last one while neither changed: a store
// calls it in every transaction that allocates.
type AgentTrees struct {
	mu   sync.Mutex
	base *resource.Tree
	sig  string
	tree *resource.Tree
}

// With returns base with the nodes of agents added (base itself when
// there are none). Nodes base declares under AgentNamespace are
// replaced; the schedule loader refuses them anyway.
func (c *AgentTrees) With(base *resource.Tree, agents []Agent) *resource.Tree {
	if len(agents) == 0 {
		return base
	}
	var b strings.Builder
	for _, a := range agents {
		fmt.Fprintf(&b, "%s\x00%d\x00", a.Name, a.Slots)
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			fmt.Fprintf(&b, "%s=%s\x00", k, a.Labels[k])
		}
		b.WriteByte('\n')
	}
	sig := b.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tree != nil && c.base == base && c.sig == sig {
		return c.tree
	}
	var nodes []resource.Node
	for _, n := range base.Nodes() {
		if !strings.HasPrefix(n.Path, AgentNamespace+"/") {
			nodes = append(nodes, *n)
		}
	}
	for _, a := range agents {
		nodes = append(nodes, a.Node())
	}
	c.base, c.sig, c.tree = base, sig, resource.NewTree(nodes)
	return c.tree
}
