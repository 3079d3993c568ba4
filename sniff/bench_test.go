package sniff_test

import (
	"crypto/tls"
	"testing"

	"github.com/dualgate/dualgate/sniff"
)

func BenchmarkClassify(b *testing.B) {
	inputs := map[string][]byte{
		"tls":    clientHello(b, tls.VersionTLS13)[:sniff.MaxPrefixLen],
		"http":   []byte("GET /echo HTTP/1.1\r\n"),
		"stream": []byte("DGS1\x00\x20"),
		"legacy": {0x00, 0x01},
		"webdav": []byte("PROPPATCH / HTTP/1.1"),
	}
	for name, in := range inputs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := sniff.Classify(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
