package talontest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a database until it is set down:
// then it cuts every connection and closes new ones at once, as a
// database that went away would (or, with SetRefusing, refuses them, as
// a stopped server does). Tests use it for outages: stopping the
// shared PostgreSQL server would break every other test running on it,
// and cutting a store's own connections is the same fault as far as
// Talon can tell.
type Proxy struct {
	// URL is the database URL, through the proxy.
	URL    string
	target string
	ln     net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewProxy starts a proxy on a free loopback port to the server of dbURL
// (a postgres:// URL); it stops when the test ends.
func NewProxy(tb testing.TB, dbURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("database URL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{target: u.Host, ln: ln, conns: map[net.Conn]bool{}}
	if u.Port() == "" {
		p.target = net.JoinHostPort(u.Hostname(), "5432")
	}
	u.Host = ln.Addr().String()
	p.URL = u.String()
	p.wg.Add(1)
	go p.accept(ln)
	tb.Cleanup(func() {
		p.mu.Lock()
		ln := p.ln
		p.mu.Unlock()
		ln.Close()
		p.SetDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies one direction; when it ends, both ends close.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// SetDown cuts the database off (true) or lets it be reached again.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// SetRefusing closes the proxy's port, so that connections are refused as
// when the database server is stopped (which Talon takes as proof that
// the database is down for every client), or opens it again on the same
// address.
func (p *Proxy) SetRefusing(tb testing.TB, refusing bool) {
	tb.Helper()
	p.mu.Lock()
	ln := p.ln
	p.mu.Unlock()
	if refusing {
		p.SetDown(true)
		ln.Close()
		p.wg.Wait()
		return
	}
	ln, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatalf("reopen the proxy's port: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.SetDown(false)
	p.wg.Add(1)
	go p.accept(ln)
}
