//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is the harness's own PostgreSQL: initdb'd in a temporary
// directory, on a free loopback port, so it can be stopped and crashed
// without touching any other server of the machine.
type cluster struct {
	bin  string // directory of initdb, pg_ctl
	root string // owned by the cluster's user: data/, sock/, postgres.log
	port int
	// runAs is the user commands run as ("" for ourselves): postgres
	// refuses to run as root.
	runAs string

	mu   sync.Mutex
	down []interval // when the database was stopped or crashed
	up   bool
}

type interval struct{ from, to time.Time }

// findPostgres returns the directory holding initdb and pg_ctl: the
// newest /usr/lib/postgresql/*/bin (Debian's layout), else PATH.
func findPostgres() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[i])), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dirs[j])), 64)
		return vi > vj
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if q, err := exec.LookPath("pg_ctl"); err == nil && filepath.Dir(p) == filepath.Dir(q) {
			return filepath.Dir(p), nil
		}
	}
	return "", errors.New("initdb and pg_ctl not found in /usr/lib/postgresql/*/bin or PATH; the harness runs its own PostgreSQL cluster: install Debian's postgresql package (apt-get install postgresql)")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// newCluster initdb's a cluster under base (which must be reachable by
// the postgres user when we are root) and starts it.
func newCluster(ctx context.Context, base string) (*cluster, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, root: filepath.Join(base, "postgres")}
	if err := os.MkdirAll(filepath.Join(c.root, "sock"), 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, the cluster must run as the postgres user, which does not exist: %w", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, errors.New("running as root, the cluster must run as the postgres user, but runuser is not in PATH")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{c.root, filepath.Join(c.root, "sock")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, err
			}
		}
		c.runAs = "postgres"
	}
	for port := 0; port == 0 || port == 5432; {
		if port, err = freePort(); err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		c.port = port
	}
	if out, err := c.pg(ctx, "initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	conn, err := c.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	for _, q := range []string{"CREATE ROLE talon LOGIN", "CREATE DATABASE talon OWNER talon"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return c, nil
}

func (c *cluster) data() string { return filepath.Join(c.root, "data") }

// pg runs a PostgreSQL program as the cluster's user.
func (c *cluster) pg(ctx context.Context, prog string, args ...string) ([]byte, error) {
	argv := append([]string{filepath.Join(c.bin, prog)}, args...)
	if c.runAs != "" {
		argv = append([]string{"runuser", "-u", c.runAs, "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.root
	return cmd.CombinedOutput()
}

// TalonURL is the state store URL the schedulers use.
func (c *cluster) TalonURL() string {
	return fmt.Sprintf("postgres://talon@127.0.0.1:%d/talon?sslmode=disable", c.port)
}

func (c *cluster) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&application_name=chaos", c.port, db))
	if err != nil {
		return nil, fmt.Errorf("connect to the harness's PostgreSQL on port %d: %w", c.port, err)
	}
	return conn, nil
}

func (c *cluster) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.port, filepath.Join(c.root, "sock"))
	out, err := c.pg(ctx, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.root, "postgres.log"), "-w", "-t", "120", "-o", opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	c.mu.Lock()
	if !c.up && len(c.down) > 0 {
		c.down[len(c.down)-1].to = time.Now()
	}
	c.up = true
	c.mu.Unlock()
	return nil
}

// stop stops the cluster: mode "fast" (a clean shutdown) or "immediate"
// (a crash: recovery runs at the next start).
func (c *cluster) stop(ctx context.Context, mode string) error {
	c.mu.Lock()
	if c.up {
		c.down = append(c.down, interval{from: time.Now()})
	}
	c.up = false
	c.mu.Unlock()
	out, err := c.pg(ctx, "pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "120", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// outages returns when the database was down; an outage still under way
// ends at now.
func (c *cluster) outages() []interval {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]interval(nil), c.down...)
	if n := len(out); n > 0 && out[n-1].to.IsZero() {
		out[n-1].to = time.Now()
	}
	return out
}

// terminateTalon ends every backend of Talon's connections, as an
// administrator or a failover would, and says how many there were.
func (c *cluster) terminateTalon(ctx context.Context) (int, error) {
	conn, err := c.connect(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE usename = 'talon' AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}

// shutdown stops the cluster whatever state it is in; it is the harness's
// last word, so it waits for it.
func (c *cluster) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err != nil {
		return
	}
	if out, err := c.pg(ctx, "pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		if !strings.Contains(string(out), "Is server running?") {
			fmt.Fprintf(os.Stderr, "chaos: stop the harness's PostgreSQL: %v\n%s", err, out)
			_, _ = c.pg(ctx, "pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		}
	}
}
