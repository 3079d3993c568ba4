package certs_test

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/dualgate/dualgate/certs"
)

// BenchmarkGetCertificate measures the per-handshake cost of the dev/files
// GetCertificate (an atomic pointer load), which sits on every TLS
// handshake's path.
func BenchmarkGetCertificate(b *testing.B) {
	m, err := certs.New(context.Background(), &certs.Options{DataDir: b.TempDir(), PollInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	get := m.TLSConfig().GetCertificate
	hello := &tls.ClientHelloInfo{ServerName: "localhost"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, err := get(hello); err != nil || c == nil {
				b.Fatal(err)
			}
		}
	})
}
