package stream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/arbor-cri/arbor/internal/syncbuf"
	"github.com/arbor-cri/arbor/oci"
)

// pki is a test CA with one server and one client certificate, as PEM.
type pki struct {
	caPEM, serverCert, serverKey, clientCert, clientKey []byte
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, caCert, caPEM := issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "arbor test ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	_, _, srvPEM := issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "stream"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	_, _, cliPEM := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubelet"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	return pki{caPEM: caPEM[0], serverCert: srvPEM[0], serverKey: srvPEM[1], clientCert: cliPEM[0], clientKey: cliPEM[1]}
}

// issue signs tmpl with parent (self-signed when parent is nil) and
// returns the key, the certificate and both as PEM.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, [2][]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, [2][]byte{
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLSWithClientCA serves over TLS and requires client certificates:
// a client with one streams, a client without one is refused.
func TestTLSWithClientCA(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	cfg := Config{
		TLSCert: writeFile(t, dir, "server.crt", p.serverCert),
		TLSKey:  writeFile(t, dir, "server.key", p.serverKey),
		TLSCA:   writeFile(t, dir, "ca.crt", p.caPEM),
	}
	b := runningBackend()
	var execs atomic.Int32
	b.exec = func(ctx context.Context, id string, opts oci.ExecOptions) (int, error) {
		execs.Add(1)
		return echoExec(ctx, id, opts)
	}
	s := startService(t, cfg, b)
	tests := []struct {
		name    string
		client  rest.TLSClientConfig
		refused bool
	}{
		{"client certificate", rest.TLSClientConfig{CAData: p.caPEM, CertData: p.clientCert, KeyData: p.clientKey}, false},
		{"no client certificate", rest.TLSClientConfig{CAData: p.caPEM}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			execs.Store(0)
			resp, err := s.svc.GetExec(&runtimeapi.ExecRequest{ContainerId: "c1", Cmd: []string{"cat"}, Stdin: true, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			assertURL(t, resp.Url, "https://"+s.svc.Address()+"/exec/")
			var out syncbuf.Buffer
			err = stream(context.Background(), t, &rest.Config{TLSClientConfig: tc.client}, resp.Url,
				remotecommand.StreamOptions{Stdin: strings.NewReader("secret"), Stdout: &out})
			if !tc.refused {
				if err != nil || out.String() != "secret" || execs.Load() != 1 {
					t.Fatalf("stream = %v, stdout %q, %d execs", err, out.String(), execs.Load())
				}
				return
			}
			// With TLS 1.3 the server rejects a missing certificate after
			// the client's side of the handshake is done, so the client
			// sees "certificate required", a reset or EOF, as timing has
			// it. What matters is that nothing ran and nothing came back.
			if err == nil || out.String() != "" || execs.Load() != 0 {
				t.Fatalf("stream = %v, stdout %q, %d execs; want it refused", err, out.String(), execs.Load())
			}
		})
	}
}
