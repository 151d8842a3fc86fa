package walrus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/ioutil"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"walrus/client/go/internal/testdaemon"
	"walrus/client/go/walrus"
)

// writeCert writes a certificate for name signed by parent (self-signed when
// parent is nil) and its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDer, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := ioutil.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDer)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLS_MutualTLSOverLoopbackVerifiesTheDaemonByName(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "test-ca", true, nil, nil)
	writeCert(t, dir, "walrusd.test", false, ca, caKey)
	writeCert(t, dir, "node.test", false, ca, caKey)
	pem := func(f string) string { return filepath.Join(dir, f) }
	// TLS applies to TCP listeners; the daemon's Unix socket stays plaintext.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	testdaemon.Start(t, "--listen", addr, "--tls-cert-file", pem("walrusd.test.pem"), "--tls-key-file", pem("walrusd.test.key"),
		"--tls-ca-file", pem("test-ca.pem"), "--tls-require-client-cert")
	ctx := context.Background()
	c, err := walrus.Dial(addr, walrus.Options{TLSCAFile: pem("test-ca.pem"), TLSServerName: "walrusd.test",
		TLSCertFile: pem("node.test.pem"), TLSKeyFile: pem("node.test.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status over mutual TLS: %v", err)
	}
	wrongName, err := walrus.Dial(addr, walrus.Options{TLSCAFile: pem("test-ca.pem"), TLSServerName: "other.test",
		TLSCertFile: pem("node.test.pem"), TLSKeyFile: pem("node.test.key"), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer wrongName.Close()
	if _, err := wrongName.Status(ctx); err == nil {
		t.Fatal("Status succeeded against a certificate for another name")
	}
}
