package certs_test

import (
	"bytes"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/certs"
)

func FuzzParseKeyPair(f *testing.F) {
	ca := newTestCA(f)
	c, k := ca.leaf(f)
	_, k2 := ca.leaf(f)
	f.Add(c, k)
	f.Add(c, k2)
	f.Add(k, c)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := certs.ParseKeyPair(certPEM, keyPEM)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "certs: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if cert.Leaf == nil || len(cert.Certificate) == 0 || !bytes.Equal(cert.Leaf.Raw, cert.Certificate[0]) {
			t.Fatal("accepted pair without a parsed leaf")
		}
		// Whatever was accepted really is a pair: crypto/tls agrees.
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Fatalf("ParseKeyPair accepted what crypto/tls refuses: %v", err)
		}
	})
}

func TestParseKeyPairRoundTripAndTruncation(t *testing.T) {
	ca := newTestCA(t)
	c, k := ca.leaf(t)
	cert, err := certs.ParseKeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.Subject.CommonName != filesName || cert.Leaf.NotAfter.Before(time.Now()) {
		t.Fatalf("leaf %v", cert.Leaf.Subject)
	}
	// Every truncation of either file is refused, never accepted half-read.
	for n := 0; n < len(c); n += 7 {
		if _, err := certs.ParseKeyPair(c[:n], k); err == nil {
			t.Fatalf("certificate truncated to %d of %d bytes accepted", n, len(c))
		}
	}
	for n := 0; n < len(k); n += 7 {
		if _, err := certs.ParseKeyPair(c, k[:n]); err == nil {
			t.Fatalf("key truncated to %d of %d bytes accepted", n, len(k))
		}
	}
}

func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"a.example.com", "A.b.C., d.e", "*.x.y", "a..b", "-a.b", strings.Repeat("a.", 200), "\x00.\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		names, err := certs.ParseNames(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "certs: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		for _, n := range names {
			if n != strings.ToLower(n) || strings.HasSuffix(n, ".") || len(n) > 253 {
				t.Fatalf("accepted non-canonical name %q", n)
			}
		}
		again, err := certs.ParseNames(strings.Join(names, " "))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("round trip of %q: %q, %v", names, again, err)
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"dev", "FILES", " acme ", "off", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := certs.ParseMode(s)
		if err != nil {
			return
		}
		if again, err := certs.ParseMode(m.String()); err != nil || again != m {
			t.Fatalf("round trip of %q: %v, %v", s, again, err)
		}
	})
}
