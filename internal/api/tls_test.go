package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/tlscert"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for 127.0.0.1 signed by ca to
// dir/server.pem and dir/server-key.pem.
func (ca *testCA) issue(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "talon"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	write(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientTrusting is an api.Client of url that trusts caFile ("": only
// the system's roots).
func clientTrusting(t *testing.T, url, caFile string) *api.Client {
	t.Helper()
	cfg, err := tlscert.ClientConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	t.Cleanup(tr.CloseIdleConnections)
	return api.NewClient(url, &http.Client{Transport: tr})
}

// TestTLS serves the API over TLS with a certificate of a CA made here:
// a client given the CA succeeds, one without it fails with an error
// that says the certificate could not be verified. A reload swaps the
// certificate for the next handshake; a reload of bad files keeps the
// old one serving.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca1, ca2 := newCA(t, "ca one"), newCA(t, "ca two")
	ca1File, ca2File := filepath.Join(dir, "ca1.pem"), filepath.Join(dir, "ca2.pem")
	write(t, ca1File, ca1.pem)
	write(t, ca2File, ca2.pem)
	certFile, keyFile := ca1.issue(t, dir)
	kp, err := tlscert.Open(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if kp.SelfSigned() {
		t.Error("a CA-signed certificate reads as self-signed")
	}

	tb := setup(t)
	hs := api.NewHTTPServer(tb.server, api.HTTPLimits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.ServeTLS(ln, kp.ServerConfig()) }()
	t.Cleanup(func() { hs.Close() })
	url := "https://" + ln.Addr().String()

	if err := clientTrusting(t, url, ca1File).Health(t.Context()); err != nil {
		t.Fatalf("client with the CA: %v", err)
	}
	untrusted := func(c *api.Client) bool {
		err := c.Health(t.Context())
		var te *talon.Error
		return errors.As(err, &te) && te.Code == talon.EUNAVAILABLE && strings.HasPrefix(te.Message, api.UntrustedPrefix+" "+url+": ")
	}
	if !untrusted(clientTrusting(t, url, "")) {
		t.Errorf("client without the CA: %v, want %q", clientTrusting(t, url, "").Health(t.Context()), api.UntrustedPrefix)
	}
	if !untrusted(clientTrusting(t, url, ca2File)) {
		t.Error("client trusting another CA was not refused")
	}
	// Plain HTTP to the TLS port is not served.
	if err := api.NewClient("http://"+ln.Addr().String(), nil).Health(t.Context()); err == nil {
		t.Error("plain http to the TLS server succeeded")
	}

	// Renewal: the files now hold a certificate of ca2.
	ca2.issue(t, dir)
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := clientTrusting(t, url, ca2File).Health(t.Context()); err != nil {
		t.Errorf("after reload, client with the new CA: %v", err)
	}
	if !untrusted(clientTrusting(t, url, ca1File)) {
		t.Error("after reload, the old certificate is still served")
	}

	// A broken file: the reload says why, and the pair read before serves.
	write(t, keyFile, []byte("not a key"))
	if err := kp.Reload(); err == nil || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("reload of a bad key: %v, want an error naming it", err)
	}
	if err := clientTrusting(t, url, ca2File).Health(t.Context()); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

// TestSelfSigned: a self-signed certificate is its own CA, which serve
// gives runs as TALON_CA.
func TestSelfSigned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, "self")
	kder, _ := x509.MarshalECPrivateKey(ca.key)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	write(t, certFile, ca.pem)
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	kp, err := tlscert.Open(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !kp.SelfSigned() {
		t.Error("a self-signed certificate is not seen as one")
	}
}
