package ssh

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Keepalive defaults: a connection whose keepalive request goes
// unanswered for twice the interval is closed, so a dropped connection
// is noticed within three intervals: 15 s by default.
const (
	DefaultKeepalive = 5 * time.Second
	// dialTimeout bounds connecting and logging in to a host.
	dialTimeout = 15 * time.Second
	// runsPerConn is how many runs share one connection: OpenSSH allows 10
	// sessions on a connection (MaxSessions), and cancels need a few.
	runsPerConn = 8
	// idleClose is how long a connection without sessions stays open.
	idleClose = time.Minute
)

// target is where a run goes and as whom.
type target struct {
	User    string
	Addr    string // host:port
	KeyFile string // "" for ssh-agent
}

func (t target) String() string { return t.User + "@" + t.Addr }

// pool keeps a few connections per target and counts the run sessions
// open to each host.
type pool struct {
	e *Executor

	mu     sync.Mutex
	conns  map[target][]*conn
	runs   map[string]int // by Addr
	freed  chan struct{}  // closed and replaced when a run session ends
	closed bool
}

type conn struct {
	c    *ssh.Client
	t    target
	runs int // run sessions open on it
	dead chan struct{}
	err  error // why it died, once dead is closed
	idle time.Time
}

func newPool(e *Executor) *pool {
	return &pool{e: e, conns: map[target][]*conn{}, runs: map[string]int{}, freed: make(chan struct{})}
}

// acquire returns a live connection to t with room for a session. A run
// session (run true) counts against the host's cap: when the cap is
// reached, acquire waits for a session to end until ctx is done. attach
// sessions go past the cap, since a run already going must be watched.
func (p *pool) acquire(ctx context.Context, t target, run, overCap bool) (*conn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("executor closed")
		}
		max := p.e.settings.MaxSessionsPerHost
		if run && !overCap && p.runs[t.Addr] >= max {
			freed := p.freed
			p.mu.Unlock()
			select {
			case <-freed:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%s has max_sessions_per_host (%d) runs going: %w", t.Addr, max, context.Cause(ctx))
			}
		}
		var pick *conn
		live := p.conns[t][:0]
		for _, c := range p.conns[t] {
			select {
			case <-c.dead:
				continue
			default:
			}
			live = append(live, c)
			if pick == nil && (!run || c.runs < runsPerConn) {
				pick = c
			}
		}
		p.conns[t] = live
		if pick != nil {
			if run {
				pick.runs++
				p.runs[t.Addr]++
			}
			p.mu.Unlock()
			return pick, nil
		}
		p.mu.Unlock()
		c, err := p.dialRetry(ctx, t)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.c.Close()
			return nil, errors.New("executor closed")
		}
		p.conns[t] = append(p.conns[t], c)
		p.mu.Unlock()
	}
}

// release ends a run session on c.
func (p *pool) release(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.runs--
	p.runs[c.t.Addr]--
	if c.runs == 0 {
		c.idle = time.Now()
	}
	close(p.freed)
	p.freed = make(chan struct{})
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*conn
	for _, cs := range p.conns {
		all = append(all, cs...)
	}
	p.conns = map[target][]*conn{}
	p.mu.Unlock()
	for _, c := range all {
		c.c.Close()
	}
}

// dialRetry dials, trying twice more when the connection was reset or
// closed during the handshake: sshd drops connections beyond its
// MaxStartups that way, and a busy host may too.
func (p *pool) dialRetry(ctx context.Context, t target) (*conn, error) {
	wait := 200 * time.Millisecond
	for i := 0; ; i++ {
		c, err := p.dial(ctx, t)
		if err == nil || i == 2 || !transient(err) {
			return c, err
		}
		p.e.log.Debug("ssh connection reset during the handshake; trying again", "host", t.Addr, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, err
		}
		wait *= 2
	}
}

// transient reports whether a failed dial may succeed at once if tried
// again.
func transient(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dial connects to t and logs in, checking the host's key against
// known_hosts.
func (p *pool) dial(ctx context.Context, t target) (*conn, error) {
	e := p.e
	cb, algos, err := e.hostKeys(t.Addr)
	if err != nil {
		return nil, err
	}
	auth, closeAuth, err := e.auth(t.KeyFile)
	if err != nil {
		return nil, err
	}
	defer closeAuth()
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              auth,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           dialTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(dctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.Addr, err)
	}
	// The handshake has no context: a deadline on the socket bounds it.
	_ = nc.SetDeadline(time.Now().Add(dialTimeout))
	cc, chans, reqs, err := ssh.NewClientConn(nc, t.Addr, cfg)
	if err != nil {
		nc.Close()
		return nil, e.explain(t, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{c: ssh.NewClient(cc, chans, reqs), t: t, dead: make(chan struct{}), idle: time.Now()}
	go func() {
		c.err = c.c.Wait()
		close(c.dead)
	}()
	go p.keepalive(c)
	return c, nil
}

// keepalive sends a keepalive request every Settings.Keepalive and
// closes the connection when one goes unanswered for twice as long, or
// when it sat idle for idleClose.
func (p *pool) keepalive(c *conn) {
	every := p.e.settings.Keepalive
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		idle := c.runs == 0 && time.Since(c.idle) > idleClose
		p.mu.Unlock()
		if idle {
			p.mu.Lock()
			cs := p.conns[c.t]
			for i, x := range cs {
				if x == c {
					p.conns[c.t] = append(cs[:i:i], cs[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			c.c.Close()
			return
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		timer := time.NewTimer(2 * every)
		select {
		case err := <-answered:
			timer.Stop()
			if err != nil {
				c.c.Close()
				return
			}
		case <-timer.C:
			p.e.log.Warn("ssh connection unanswered; closing it", "host", c.t.Addr, "after", 2*every)
			c.c.Close()
			return
		case <-c.dead:
			timer.Stop()
			return
		}
	}
}

// hostKeys is the host-key check for addr from known_hosts, and the key
// algorithms to ask the host for: those of the keys known_hosts has for
// it, so a host that also has a key of another type shows the one that
// can be checked.
func (e *Executor) hostKeys(addr string) (ssh.HostKeyCallback, []string, error) {
	file := e.settings.KnownHosts
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read known_hosts %s: %w", file, err)
	}
	// A key no host has tells which keys the file holds for addr.
	var algos []string
	var ke *knownhosts.KeyError
	if err := cb(addr, fakeAddr(addr), probeKey); errors.As(err, &ke) {
		seen := map[string]bool{}
		for _, k := range ke.Want {
			for _, a := range algorithmsFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					algos = append(algos, a)
				}
			}
		}
	}
	return cb, algos, nil
}

// algorithmsFor lists the host key algorithms that show a key of type t:
// an RSA key is signed with SHA-2 by current servers.
func algorithmsFor(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

var probeKey = func() ssh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(nil)
	k, _ := ssh.NewPublicKey(pub)
	return k
}()

func fakeAddr(addr string) net.Addr {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.ParseIP(host), Port: n}
}

// explain turns a failed login into an error that says what to do.
func (e *Executor) explain(t target, err error) error {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	host, port, _ := net.SplitHostPort(t.Addr)
	scan := "ssh-keyscan " + host
	if port != "22" {
		scan = "ssh-keyscan -p " + port + " " + host
	}
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return fmt.Errorf("host %s is not in known_hosts %s: check its key's fingerprint with the host's owner, then add it: %s >> %s",
			t.Addr, e.settings.KnownHosts, scan, e.settings.KnownHosts)
	case errors.As(err, &ke):
		return fmt.Errorf("the key of host %s does NOT match known_hosts %s:%d (someone may be intercepting the connection, or the host was reinstalled): if the new key is expected, remove the old one (ssh-keygen -R %s -f %s) and add it: %s >> %s",
			t.Addr, ke.Want[0].Filename, ke.Want[0].Line, knownhosts.Normalize(t.Addr), e.settings.KnownHosts, scan, e.settings.KnownHosts)
	case errors.As(err, &re):
		return fmt.Errorf("the key of host %s is revoked in known_hosts %s:%d", t.Addr, re.Revoked.Filename, re.Revoked.Line)
	case strings.Contains(err.Error(), "unable to authenticate"):
		how := "key_file " + t.KeyFile
		if t.KeyFile == "" {
			how = "the keys of ssh-agent"
		}
		return fmt.Errorf("log in to %s as %s: not accepted with %s (is its public key in ~%s/.ssh/authorized_keys?)", t.Addr, t.User, how, t.User)
	}
	return fmt.Errorf("log in to %s as %s: %w", t.Addr, t.User, err)
}

// auth is how to log in: the key in keyFile, else the keys of ssh-agent.
func (e *Executor) auth(keyFile string) ([]ssh.AuthMethod, func(), error) {
	if keyFile != "" {
		s, err := e.signer(keyFile)
		if err != nil {
			return nil, nil, err
		}
		return []ssh.AuthMethod{ssh.PublicKeys(s)}, func() {}, nil
	}
	sock := e.settings.AgentSocket
	if sock == "" {
		return nil, nil, errors.New("no key_file set and no ssh-agent (SSH_AUTH_SOCK is not set in the server's environment): set executors: {ssh: {key_file: PATH}}")
	}
	ac, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("reach ssh-agent at %s: %w", sock, err)
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(ac).Signers)}, func() { ac.Close() }, nil
}

// Check reads the files the settings name — the key file, and the
// known_hosts file when knownHosts — so that a configuration naming a
// missing, unreadable or malformed one is refused when the server starts,
// not at its first ssh run.
func (e *Executor) Check(knownHosts bool) error {
	if f := e.settings.KeyFile; f != "" {
		if _, err := e.signer(f); err != nil {
			return err
		}
	}
	if f := e.settings.KnownHosts; knownHosts && f != "" {
		if _, err := knownhosts.New(f); err != nil {
			return fmt.Errorf("read known_hosts %s: %w", f, err)
		}
	}
	return nil
}

// signer reads and parses a private key file, once.
func (e *Executor) signer(path string) (ssh.Signer, error) {
	e.keysMu.Lock()
	defer e.keysMu.Unlock()
	if s, ok := e.keys[path]; ok {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ssh key_file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pe *ssh.PassphraseMissingError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("ssh key_file %s is protected by a passphrase: load it into ssh-agent and leave key_file unset", path)
	}
	if err != nil {
		return nil, fmt.Errorf("parse ssh key_file %s: %w", path, err)
	}
	e.keys[path] = s
	return s, nil
}
