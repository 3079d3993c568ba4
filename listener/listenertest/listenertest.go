// Package listenertest holds helpers for tests of the sniffing listener and
// the layers above it: a throwaway localhost certificate, TLS configs that
// trust it, and a connection that writes one byte at a time.
package listenertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

var (
	certOnce sync.Once
	cert     tls.Certificate
	certPool *x509.CertPool
	certErr  error
)

// Certificate returns a self-signed ECDSA P-256 certificate for localhost,
// 127.0.0.1 and ::1, shared by all tests of the binary, and a pool that
// trusts it. With a nil tb (in examples) it panics on failure.
func Certificate(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	if tb != nil {
		tb.Helper()
	}
	certOnce.Do(func() {
		var key *ecdsa.PrivateKey
		key, certErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if certErr != nil {
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "listenertest"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			DNSNames:              []string{"localhost"},
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		var der []byte
		der, certErr = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if certErr != nil {
			return
		}
		var leaf *x509.Certificate
		leaf, certErr = x509.ParseCertificate(der)
		if certErr != nil {
			return
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
		certPool = x509.NewCertPool()
		certPool.AddCert(leaf)
	})
	if certErr != nil {
		if tb == nil {
			panic("listenertest: certificate: " + certErr.Error())
		}
		tb.Fatalf("listenertest: certificate: %v", certErr)
	}
	return cert, certPool
}

// ServerConfig returns a server TLS config with Certificate, offering
// http/1.1.
func ServerConfig(tb testing.TB) *tls.Config {
	tb.Helper()
	c, _ := Certificate(tb)
	return &tls.Config{Certificates: []tls.Certificate{c}, NextProtos: []string{"http/1.1"}}
}

// ClientConfig returns a client TLS config that trusts Certificate, limited
// to the given TLS version (0: any).
func ClientConfig(tb testing.TB, version uint16) *tls.Config {
	tb.Helper()
	_, pool := Certificate(tb)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: version, MaxVersion: version}
}

// OneByteConn writes every Write one byte per underlying Write, so that a
// TLS ClientHello crosses the network in as many TCP segments as it has
// bytes (the socket has TCP_NODELAY, Go's default).
type OneByteConn struct {
	net.Conn
}

// Write writes p one byte at a time.
func (c OneByteConn) Write(p []byte) (int, error) {
	for i := range p {
		if _, err := c.Conn.Write(p[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(p), nil
}
