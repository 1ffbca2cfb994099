// Package cli is the talon command: one file per verb, all of Talon's
// printing, and the wiring of every part from explicit values (flags,
// environment, config). Verbs other than validate and serve talk to a
// server through api.Client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/tlscert"
)

// DefaultServer is where the CLI looks for a server when neither --server
// nor TALON_URL says otherwise; `talon serve` listens there by default.
const DefaultServer = "http://127.0.0.1:7070"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// globals is what every verb shares: where to print, the environment,
// and the global flags. The serve verb gets it too.
type globals struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	loc            *time.Location // where times are shown

	server string // --server
	output string // -o: table or json
	ca     string // --ca

	// started is set once flags and arguments were accepted, so that an
	// error before it is a usage error (exit 2).
	started bool
	client  *api.Client
}

// Main runs the talon command with args (without the program name) and
// returns the exit code: 0 ok, 1 error, 2 usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, getenv: os.Getenv, loc: time.Local}
	return g.run(ctx, args)
}

func (g *globals) run(ctx context.Context, args []string) int {
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return g.report(root, args, err)
}

func newRootCmd(g *globals) *cobra.Command {
	server := g.getenv("TALON_URL")
	if server == "" {
		server = DefaultServer
	}
	root := &cobra.Command{
		Use:   "talon",
		Short: "Run jobs periodically, under constraints",
		Long: `Talon runs jobs periodically, under constraints. A job is run for a period
when a trigger fires; the run stays blocked until every constraint passes.

Most verbs talk to a running server (talon serve); validate works offline.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Cobra's own suggestions print as part of the error; report()
		// turns them into a try: line instead.
		DisableSuggestions: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "table" && g.output != "json" {
				return usagef("-o %q: want table or json", g.output)
			}
			// Offline verbs must work whatever TALON_URL holds.
			offline := cmd.Name() == "validate" || cmd.Name() == "serve" || cmd.Name() == "calendar"
			if !offline {
				if err := checkServerURL(g.server); err != nil {
					return err
				}
			}
			g.started = true
			if !offline {
				return g.newClient()
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.server, "server", server, "URL of the talon server (env TALON_URL)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.PersistentFlags().StringVar(&g.ca, "ca", g.getenv("TALON_CA"), "CA certificate file (PEM) to verify an https server with, besides the system's (env TALON_CA)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, cmd: cmd}
	})
	root.AddCommand(
		newServeCmd(g),
		newValidateCmd(g),
		newJobsCmd(g),
		newRunsCmd(g),
		newShowCmd(g),
		newTriggerCmd(g),
		newCancelCmd(g),
		newRetryCmd(g),
		newMarkCmd(g),
		newPauseCmd(g),
		newResumeCmd(g),
		newAuditCmd(g),
		newPeriodsCmd(g),
		newResourcesCmd(g),
		newLogsCmd(g),
		newProgressCmd(g),
		newArtifactCmd(g),
		newArtifactsCmd(g),
		newReloadCmd(g),
		newBackfillCmd(g),
		newCalendarCmd(g),
		newAgentCmd(g),
		newAgentsCmd(g),
	)
	return root
}

// api returns the client of the server named by --server, which
// PersistentPreRunE made.
func (g *globals) api() *api.Client {
	if g.client == nil {
		g.client = api.NewClient(g.server, nil)
		g.client.User = g.getenv("USER")
	}
	return g.client
}

// newClient makes the client of the server named by --server: it trusts
// the CA of --ca (TALON_CA) besides the system's, and sends the token of
// TALON_TOKEN or, when that is unset, of the file TALON_TOKEN_FILE names.
// TALON_TOKEN wins so that a run's own token (the engine sets
// TALON_TOKEN) is used even where the server's environment, which runs
// inherit, names a token file.
func (g *globals) newClient() error {
	hc := &http.Client{}
	if g.ca != "" {
		cfg, err := tlscert.ClientConfig(g.ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		hc.Transport = tr
	}
	c := api.NewClient(g.server, hc)
	c.User = g.getenv("USER")
	c.Token = g.getenv("TALON_TOKEN")
	if f := g.getenv("TALON_TOKEN_FILE"); c.Token == "" && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("TALON_TOKEN_FILE: %w", err)
		}
		if c.Token = strings.TrimSpace(string(b)); c.Token == "" {
			return fmt.Errorf("TALON_TOKEN_FILE %s is empty: want the token on its first line", f)
		}
	}
	g.client = c
	return nil
}

// checkServerURL catches an address that cannot be a Talon server before
// it turns into a confusing transport error.
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--server %q: want a URL like %s", s, DefaultServer)
	}
	return nil
}

// usageError is a mistake in how talon was called: exit code 2, and a
// pointer to the verb's help.
type usageError struct {
	err error
	cmd *cobra.Command // whose help to suggest; nil for the root
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// hintError carries a working command to suggest after the error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// report prints err as "talon: message" and, when there is one, a
// "try: …" line with a command that works; it returns the exit code.
func (g *globals) report(root *cobra.Command, args []string, err error) int {
	code := exitError
	var hint string
	var ue *usageError
	var he *hintError
	var te *talon.Error
	switch {
	case errors.As(err, &ue):
		code = exitUsage
		c := ue.cmd
		if c == nil {
			c, _, _ = root.Find(args)
		}
		hint = helpHint(root, c)
	case !g.started && strings.HasPrefix(err.Error(), "unknown command"):
		code = exitUsage
		hint = "talon --help"
		if len(args) > 0 {
			var names []string
			for _, c := range root.Commands() {
				names = append(names, c.Name())
			}
			if near := nearest(args[0], names); len(near) > 0 {
				hint = "talon " + near[0]
			}
		}
	case !g.started:
		// Cobra's own argument checks ("accepts 1 arg(s), received 0").
		code = exitUsage
		if c, _, ferr := root.Find(args); ferr == nil {
			hint = helpHint(root, c)
		}
	case errors.As(err, &he):
		hint = he.hint
	case errors.Is(err, context.Canceled):
		err = errors.New("interrupted")
	case errors.As(err, &te) && te.Code == talon.EUNAVAILABLE && strings.HasPrefix(te.Message, "cannot reach talon"):
		hint = quickStartHint
	case errors.As(err, &te) && te.Code == talon.EUNAVAILABLE && strings.HasPrefix(te.Message, api.UntrustedPrefix):
		hint = fmt.Sprintf("talon --ca CA.pem %s   (or TALON_CA=CA.pem: the CA that signed the server's certificate)", strings.Join(args, " "))
	case errors.As(err, &te) && te.Code == api.EUNAUTHORIZED:
		hint = fmt.Sprintf("TALON_TOKEN_FILE=FILE talon %s   (or set TALON_TOKEN: a token the server knows)", strings.Join(args, " "))
	case errors.As(err, &te) && te.Code == api.EFORBIDDEN:
		hint = fmt.Sprintf("TALON_TOKEN_FILE=FILE talon %s   (a token whose role may do this; TALON_TOKEN works too)", strings.Join(args, " "))
	}
	fmt.Fprintf(g.stderr, "talon: %v\n", err)
	if hint != "" {
		fmt.Fprintf(g.stderr, "try: %s\n", hint)
	}
	return code
}

// quickStartHint is how to start a server, in the README's quick start
// words, for a user whose verbs find none.
const quickStartHint = "talon serve --config examples/quickstart.yaml"

// argsWant wraps a cobra argument check so that its error names what the
// verb wants ("show: want RUN, got no arguments") and is a usage error.
func argsWant(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if check(cmd, args) == nil {
			return nil
		}
		want := "no arguments"
		if _, rest, ok := strings.Cut(cmd.Use, " "); ok {
			want = rest
		}
		got := "no arguments"
		switch len(args) {
		case 0:
		case 1:
			got = "1 argument"
		default:
			got = strconv.Itoa(len(args)) + " arguments"
		}
		return &usageError{err: fmt.Errorf("%s: want %s, got %s", cmd.Name(), want, got), cmd: cmd}
	}
}

func helpHint(root, cmd *cobra.Command) string {
	if cmd == nil || cmd == root {
		return "talon --help"
	}
	return cmd.CommandPath() + " --help"
}

// parseRunID reads a RUN argument.
func parseRunID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("run %q: want a run id (a positive integer)", s)
	}
	return id, nil
}

// runErr words the errors of a verb about one run: an unknown run is
// "run 999 not found" whatever the server's phrasing, with a way to find
// the right one. A not-found about something else of the run ("run 3 has
// no log: it never started") keeps the server's words.
func runErr(id int64, err error) error {
	var te *talon.Error
	if !errors.As(err, &te) || te.Code != talon.ENOTFOUND {
		return err
	}
	if msg := fmt.Sprintf("run %d ", id); strings.HasPrefix(te.Message, msg) && te.Message != msg+"not found" {
		return err
	}
	return withHint(fmt.Errorf("run %d not found", id), "talon runs")
}
