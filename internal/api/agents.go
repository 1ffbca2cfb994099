package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

// The agent protocol: a remote node running `talon agent` connects out
// to the API (its token has role agent) and
//
//   - registers a session (register), learning its lease;
//   - renews it every HeartbeatMS (heartbeat), by the database's clock;
//   - asks for work with a long poll (poll): the runs handed to it and
//     the cancels of runs it has;
//   - reports each run (report): its process, its output from an offset
//     (so a report sent again after a lost answer appends nothing
//     twice), and its end.
//
// A long poll, rather than a stream, so that every request stands
// alone: any scheduler sharing the database can answer it, a proxy or
// load balancer in between needs nothing special, and a broken
// connection is just a request that failed and is sent again.

// AgentRegister is the body of POST /api/v1/agents/{name}/register.
type AgentRegister struct {
	// Session is the agent process's random id; a restarted agent
	// registers a new one, naming its earlier one in Previous so that
	// the server knows the runs of that one died with it.
	Session  string            `json:"session"`
	Previous string            `json:"previous,omitempty"`
	Slots    int               `json:"slots"`
	Labels   map[string]string `json:"labels,omitempty"`
	Host     string            `json:"host,omitempty"`
	Version  string            `json:"version,omitempty"`
}

// AgentLease is the answer of register and heartbeat: how long the
// session's lease lasts from the request (by the database's clock) and
// how often to renew it.
type AgentLease struct {
	LeaseMS     int64 `json:"lease_ms"`
	HeartbeatMS int64 `json:"heartbeat_ms"`
	// Lost lists the runs of earlier sessions that the registration
	// declared lost (register only).
	Lost []int64 `json:"lost,omitempty"`
}

// AgentBeat is the body of POST /api/v1/agents/{name}/heartbeat.
type AgentBeat struct {
	Session string `json:"session"`
}

// AgentPoll is the body of POST /api/v1/agents/{name}/poll.
type AgentPoll struct {
	Session string `json:"session"`
	// Known lists the runs the agent has (starting, running, or ended
	// and not yet reported): those are not handed to it again.
	Known []int64 `json:"known,omitempty"`
	// Cancelled lists the runs of Known it has already stopped for a
	// cancel: their cancels are not sent again.
	Cancelled []int64 `json:"cancelled,omitempty"`
	// WaitMS is how long the server may hold the request when there is
	// no work (at most MaxAgentWait).
	WaitMS int64 `json:"wait_ms,omitempty"`
}

// MaxAgentWait bounds a long poll, well below the server's write
// timeout.
const MaxAgentWait = 25 * time.Second

// AgentWork is the answer of a poll.
type AgentWork struct {
	Runs   []AgentRunSpec `json:"runs,omitempty"`
	Cancel []AgentCancel  `json:"cancel,omitempty"`
}

// AgentRunSpec is one run for an agent to start, with what the local
// executor needs.
type AgentRunSpec struct {
	Run     int64    `json:"run"`
	Job     string   `json:"job"`
	Command []string `json:"command"`
	Dir     string   `json:"dir,omitempty"`
	// Env is KEY=VALUE: the job's env, its secrets and the run's
	// TALON_* variables, its own token among them.
	Env []string `json:"env"`
	// Secrets are values to mask in the output.
	Secrets []string `json:"secrets,omitempty"`
}

// AgentCancel asks an agent to stop a run.
type AgentCancel struct {
	Run    int64  `json:"run"`
	Reason string `json:"reason"`
}

// AgentReport is the body of POST /api/v1/agents/{name}/runs/{id}/report.
// Its parts are applied in order: the start, the output, the end.
type AgentReport struct {
	Session string `json:"session"`
	// Started says the run's process started, with its pid.
	Started *AgentStarted `json:"started,omitempty"`
	// Output is the run's output from Offset (bytes the agent has sent
	// before): what the server already has is skipped.
	Output *AgentOutput `json:"output,omitempty"`
	// Ended is how the run ended; sent once all its output was.
	Ended *AgentEnded `json:"ended,omitempty"`
}

// AgentStarted is a run's process.
type AgentStarted struct {
	PID int `json:"pid"`
}

// AgentOutput is a piece of a run's output.
type AgentOutput struct {
	Offset int64  `json:"offset"`
	Data   []byte `json:"data"`
}

// AgentEnded is how a run ended. AgoMS is how long before the report it
// ended, on the agent's clock.
type AgentEnded struct {
	Succeeded bool   `json:"succeeded"`
	ExitCode  int    `json:"exit_code"`
	Reason    string `json:"reason"`
	AgoMS     int64  `json:"ago_ms,omitempty"`
}

// AgentReported is the answer of a report: how much of the run's output
// the server has, and whether the agent must stop the run (it ended on
// the server's side: cancelled before it started, or lost).
type AgentReported struct {
	Output int64 `json:"output"`
	// Stop, when set, says why the agent must stop the run and forget
	// it: the server will not take its outcome.
	Stop string `json:"stop,omitempty"`
}

// Agents serves the agent protocol; the agent executor implements it.
// Errors are *talon.Error: conflict from register means the name is
// taken, and from heartbeat, poll or report that the session is gone
// (the agent stops its runs and registers again).
type Agents interface {
	Register(ctx context.Context, name, by string, req AgentRegister) (AgentLease, error)
	Heartbeat(ctx context.Context, name string, req AgentBeat) (AgentLease, error)
	Poll(ctx context.Context, name string, req AgentPoll) (AgentWork, error)
	Report(ctx context.Context, name string, run int64, req AgentReport) (AgentReported, error)
}

// WithAgents serves the agent protocol through a.
func WithAgents(a Agents) Option {
	return func(s *Server) { s.agents = a }
}

// maxAgentBody bounds an agent's report: output comes in pieces of at
// most MaxAgentOutput bytes, base64 in JSON.
const maxAgentBody = 2 << 20

// MaxAgentOutput is the largest piece of output one report carries.
const MaxAgentOutput = 1 << 20

func (s *Server) agentsOrNot() (Agents, error) {
	if s.agents == nil {
		return nil, talon.Errorf(talon.ENOTFOUND, "this server does not serve agents")
	}
	return s.agents, nil
}

func agentName(r *http.Request) string { return r.PathValue("name") }

func (s *Server) agentRegister(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentsOrNot()
	if err != nil {
		return err
	}
	var req AgentRegister
	if err := decode(r, &req, false); err != nil {
		return err
	}
	p, _ := PrincipalOf(r.Context())
	out, err := a.Register(r.Context(), agentName(r), p.Name, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) agentHeartbeat(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentsOrNot()
	if err != nil {
		return err
	}
	var req AgentBeat
	if err := decode(r, &req, false); err != nil {
		return err
	}
	out, err := a.Heartbeat(r.Context(), agentName(r), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) agentPoll(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentsOrNot()
	if err != nil {
		return err
	}
	var req AgentPoll
	if err := decode(r, &req, false); err != nil {
		return err
	}
	// A long poll ends when the server shuts down, as streams do: the
	// agent asks the next server.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	out, err := a.Poll(ctx, agentName(r), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) agentReport(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentsOrNot()
	if err != nil {
		return err
	}
	id, err := runID(r)
	if err != nil {
		return err
	}
	var req AgentReport
	r.Body = http.MaxBytesReader(w, r.Body, maxAgentBody)
	if err := decodeLimit(r, &req, maxAgentBody); err != nil {
		return err
	}
	if req.Output != nil && len(req.Output.Data) > MaxAgentOutput {
		return talon.Errorf(talon.EINVALID, "output: %d bytes in one report, want at most %d", len(req.Output.Data), MaxAgentOutput)
	}
	out, err := a.Report(r.Context(), agentName(r), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) agentList(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	out, err := s.backend.Agents(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nonNil(out))
	return nil
}

// Agents lists the agents (talon agents).
func (c *Client) Agents(ctx context.Context) ([]view.AgentInfo, error) {
	var out []view.AgentInfo
	_, err := c.do(ctx, http.MethodGet, "agents", nil, nil, &out)
	return out, err
}

func agentPath(name, verb string) string { return "agents/" + url.PathEscape(name) + "/" + verb }

// RegisterAgent starts an agent's session.
func (c *Client) RegisterAgent(ctx context.Context, name string, req AgentRegister) (AgentLease, error) {
	var out AgentLease
	_, err := c.do(ctx, http.MethodPost, agentPath(name, "register"), nil, req, &out)
	return out, err
}

// AgentHeartbeat renews an agent session's lease.
func (c *Client) AgentHeartbeat(ctx context.Context, name string, req AgentBeat) (AgentLease, error) {
	var out AgentLease
	_, err := c.do(ctx, http.MethodPost, agentPath(name, "heartbeat"), nil, req, &out)
	return out, err
}

// AgentPoll asks for an agent's work, waiting up to req.WaitMS.
func (c *Client) AgentPoll(ctx context.Context, name string, req AgentPoll) (AgentWork, error) {
	var out AgentWork
	_, err := c.do(ctx, http.MethodPost, agentPath(name, "poll"), nil, req, &out)
	return out, err
}

// AgentReport reports on one run of an agent.
func (c *Client) AgentReport(ctx context.Context, name string, run int64, req AgentReport) (AgentReported, error) {
	var out AgentReported
	_, err := c.do(ctx, http.MethodPost, agentPath(name, "runs/"+strconv.FormatInt(run, 10)+"/report"), nil, req, &out)
	return out, err
}
