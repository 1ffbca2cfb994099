package api

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPLimits bound what one client can hold of the server. Zero fields
// take the defaults below.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, so a body
	// trickled a byte at a time cannot hold a connection.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer. Streaming routes (a log
	// followed with ?follow=true) lift it and instead bound each write by
	// it: a reader that keeps up may stream for as long as the run lasts,
	// one that stops reading is cut off.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request.
	IdleTimeout time.Duration
	// MaxConns bounds the connections served at once; more wait in the
	// kernel's accept queue until one closes.
	MaxConns int
}

// Default HTTP limits: generous for the largest legitimate request (a
// 1 MiB progress report) and answer (a page of 1000 runs), short enough
// that slow or idle clients do not pile up.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxConns          = 512
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	return l
}

// HTTPServer is the http.Server of the API, with its limits. Create it
// with NewHTTPServer and start it with Serve.
type HTTPServer struct {
	*http.Server
	limits HTTPLimits
}

// NewHTTPServer returns an HTTP server for s with limits l. Its Shutdown
// also ends the streams s is serving, which would otherwise keep it
// waiting until the runs they follow end.
func NewHTTPServer(s *Server, l HTTPLimits) *HTTPServer {
	l = l.withDefaults()
	s.writeTimeout = l.WriteTimeout
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
	}
	hs.RegisterOnShutdown(s.closeStreams)
	return &HTTPServer{Server: hs, limits: l}
}

// Limits returns the limits in force, defaults filled in.
func (s *HTTPServer) Limits() HTTPLimits { return s.limits }

// Serve accepts connections on ln, at most MaxConns at once, until
// Shutdown or Close; it returns http.ErrServerClosed then.
func (s *HTTPServer) Serve(ln net.Listener) error {
	return s.Server.Serve(limitListener(ln, s.limits.MaxConns))
}

// ServeTLS is Serve over TLS with cfg (its GetCertificate serves the
// certificate, so a reloaded one takes effect on the next handshake).
func (s *HTTPServer) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	s.Server.TLSConfig = cfg
	return s.Server.ServeTLS(limitListener(ln, s.limits.MaxConns), "", "")
}

// Close closes the listener and every connection at once, and ends the
// streams being served.
func (s *HTTPServer) Close() error {
	if h, ok := s.Handler.(*Server); ok {
		h.closeStreams()
	}
	return s.Server.Close()
}

// limitListener lets at most n connections be open at once: Accept waits
// for a slot, and a connection gives its slot back when it is closed.
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
