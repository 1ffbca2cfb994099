package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talonhq/talon/internal/agent"
	"github.com/talonhq/talon/internal/executor/local"
	"github.com/talonhq/talon/internal/store"
)

type agentOpts struct {
	tokenFile, labels, name, dir string
	slots                        int
	grace                        time.Duration
}

// newAgentCmd builds the agent verb: a remote node that runs jobs the
// server hands it.
func newAgentCmd(g *globals) *cobra.Command {
	var o agentOpts
	cmd := &cobra.Command{
		Use:   "agent --server URL [--token-file F] [--labels k=v,…] [--slots N] [--name NAME]",
		Short: "Run jobs on this node for a Talon server (connects out; opens no port)",
		Long: `Run jobs on this node for a Talon server. The agent connects out to the
server's API (https and a token of role agent when the server is not on
loopback), registers as the resource hosts/agents/NAME with --slots as its
capacity and --labels as its attributes, and runs the runs allocated to it
with the local executor: process group, timeout, output, progress lines.
Jobs choose it with executor: agent and resources: {hosts/agents/*: 1}.

It heartbeats every lease/3 (the server says; 5s by default). Cut off from
the server for 5/6 of the lease, it kills its runs before the server may
declare them lost and retry them elsewhere; it reconnects by itself. See
docs/agents.md.`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.agent(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the agent's token (role agent); default: TALON_TOKEN, or the file TALON_TOKEN_FILE names")
	f.StringVar(&o.labels, "labels", "", "labels, k=v,…: the agent's resource attributes, for jobs' where filters")
	f.IntVar(&o.slots, "slots", runtime.NumCPU(), "how many runs (units of hosts/agents/NAME) at once")
	f.StringVar(&o.name, "name", "", "the agent's name, its resource hosts/agents/NAME (default: the host name)")
	f.StringVar(&o.dir, "dir", "", "state directory: lock, session, run logs (default talon-agent-NAME)")
	f.DurationVar(&o.grace, "grace", local.DefaultGrace, "how long a cancelled run gets between SIGTERM and SIGKILL")
	return cmd
}

func parseLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--labels %q: want k=v pairs separated by commas, like os=linux,cores=16", s)
		}
		if _, dup := out[k]; dup {
			return nil, usagef("--labels: label %s given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

var nameClean = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (g *globals) agent(cmd *cobra.Command, o agentOpts) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("talon agent runs on Linux only: its runs' supervisor, which kills them when the agent loses its lease, is Linux's (subreaper, process groups)")
	}
	labels, err := parseLabels(o.labels)
	if err != nil {
		return err
	}
	if o.name == "" {
		host, _ := os.Hostname()
		o.name = strings.Trim(nameClean.ReplaceAllString(strings.Split(host, ".")[0], "-"), "-._")
	}
	if err := store.CheckAgentName(o.name); err != nil {
		return usagef("--name: %v", err)
	}
	a := store.Agent{Name: o.name, Session: "x", Slots: o.slots, Labels: labels}
	if err := store.CheckAgent(a); err != nil {
		return usagef("%v", err)
	}
	if o.grace <= 0 || o.grace > time.Hour {
		return usagef("--grace %s: want more than 0 and at most 1h", o.grace)
	}
	if o.dir == "" {
		o.dir = "talon-agent-" + o.name
	}
	cl := g.api()
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if cl.Token = strings.TrimSpace(string(b)); cl.Token == "" {
			return fmt.Errorf("--token-file %s is empty: want the token on its first line", o.tokenFile)
		}
	}
	// The agent's own token is not the jobs': they get their run's token
	// alone (the local executor starts them with this process's
	// environment, under theirs).
	for _, k := range []string{"TALON_TOKEN", "TALON_TOKEN_FILE"} {
		_ = os.Unsetenv(k)
	}
	ca := g.ca
	if ca != "" {
		if abs, err := filepath.Abs(ca); err == nil {
			ca = abs
		}
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	logger.Info("talon agent starting", "agent", o.name, "server", cl.BaseURL(), "slots", o.slots, "labels", o.labels, "dir", o.dir)
	return agent.Run(cmd.Context(), agent.Config{
		Client: cl, CAFile: ca, Name: o.name, Slots: o.slots, Labels: labels, Dir: o.dir, Logger: logger, Grace: o.grace,
		Ready: func(session string) {
			fmt.Fprintf(g.stdout, "talon: agent %s registered (session %s)\n", o.name, session)
		},
	})
}
