// Package tlscert is the TLS of Talon's API: the server's certificate,
// swapped atomically when it is re-read on SIGHUP (a renewal takes no
// restart, and a bad file keeps the old pair serving), and the CA pool
// the CLI verifies the server with.
package tlscert

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// Keypair is a certificate and its key, read from PEM files. Its
// GetCertificate serves whichever pair was read last.
type Keypair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Open reads the certificate (with its chain) and key files.
func Open(certFile, keyFile string) (*Keypair, error) {
	kp := &Keypair{certFile: certFile, keyFile: keyFile}
	if err := kp.Reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Reload re-reads the files. On error the pair read before keeps serving,
// and the error says why.
func (kp *Keypair) Reload() error {
	c, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("tls: cert %s, key %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cur.Store(&c)
	return nil
}

// Leaf is the server's certificate as now served.
func (kp *Keypair) Leaf() *x509.Certificate { return kp.cur.Load().Leaf }

// CertFile is the certificate file's path.
func (kp *Keypair) CertFile() string { return kp.certFile }

// GetCertificate serves the current pair (tls.Config.GetCertificate).
func (kp *Keypair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.cur.Load(), nil
}

// ServerConfig is the TLS config of the API server: TLS 1.2 or later,
// with kp's current certificate.
func (kp *Keypair) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.GetCertificate}
}

// SelfSigned reports whether the certificate served is its own issuer,
// so that clients must be given the certificate itself to trust it.
func (kp *Keypair) SelfSigned() bool {
	leaf := kp.Leaf()
	return leaf != nil && bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignatureFrom(leaf) == nil
}

// ClientConfig is the TLS config of a client that trusts the system's
// roots plus the CA certificates in caFile (PEM); caFile "" adds none.
func ClientConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// IsVerifyError reports whether err is a failure to verify a server's
// certificate (unknown authority, wrong host name, expired), as opposed
// to a failure to reach it.
func IsVerifyError(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv)
}
