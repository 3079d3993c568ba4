package certs_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dualgate/dualgate/certs"
)

func TestParseModeRoundTrip(t *testing.T) {
	for _, m := range []certs.Mode{certs.ModeDev, certs.ModeFiles, certs.ModeACME, certs.ModeOff} {
		got, err := certs.ParseMode(" " + strings.ToUpper(m.String()) + "\n")
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	for _, bad := range []string{"", "on", "tls", "de", "devx", "acme,dev"} {
		if _, err := certs.ParseMode(bad); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
			t.Errorf("ParseMode(%q) error = %v", bad, err)
		}
	}
	if s := certs.Mode(42).String(); s != "Mode(42)" {
		t.Errorf("String of an unknown mode = %q", s)
	}
}

func TestParseNames(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "a.example.com", want: []string{"a.example.com"}},
		{in: " A.Example.COM., b.example.com  a.example.com", want: []string{"a.example.com", "b.example.com"}},
		{in: "", want: nil},
		{in: "localhost", wantErr: "not a fully qualified"},
		{in: "*.example.com", wantErr: "DNS-01"},
		{in: "a..example.com", wantErr: "invalid label"},
		{in: "-a.example.com", wantErr: "invalid label"},
		{in: "a_b.example.com", wantErr: "invalid character"},
		{in: strings.Repeat("a", 64) + ".example.com", wantErr: "invalid label"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", wantErr: "longer than 253"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := certs.ParseNames(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			// Round trip: joining and parsing again gives the same list.
			again, err := certs.ParseNames(strings.Join(got, ","))
			if err != nil || !slices.Equal(again, got) {
				t.Fatalf("round trip: %q, %v", again, err)
			}
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	acme := func(mod func(*certs.Options)) *certs.Options {
		o := &certs.Options{Mode: certs.ModeACME, DataDir: t.TempDir(), Domains: []string{"a.example.com"},
			CA: "https://127.0.0.1:14000/dir", Port: 8443}
		mod(o)
		return o
	}
	tests := []struct {
		name string
		opts *certs.Options
		want string
	}{
		{"files without key", &certs.Options{Mode: certs.ModeFiles, CertFile: "c.pem"}, "needs both"},
		{"unknown mode", &certs.Options{Mode: certs.Mode(9)}, "unknown mode"},
		{"acme without domains", acme(func(o *certs.Options) { o.Domains = nil }), "at least one domain"},
		{"acme wildcard", acme(func(o *certs.Options) { o.Domains = []string{"*.example.com"} }), "DNS-01"},
		{"acme no challenge", acme(func(o *certs.Options) { o.DisableHTTP01, o.DisableTLSALPN01 = true, true }), "cannot validate"},
		{"acme no port", acme(func(o *certs.Options) { o.Port = 0 }), "gateway's port"},
		{"acme http CA", acme(func(o *certs.Options) { o.CA = "http://ca.example.com/dir" }), "not an https URL"},
		{"acme bad roots", acme(func(o *certs.Options) { o.CARootsPEM = []byte("junk") }), "holds no certificate"},
		{"on-demand open", acme(func(o *certs.Options) { o.OnDemand = &certs.OnDemand{} }), "allowlist or an ask URL"},
		{"on-demand bad ask", acme(func(o *certs.Options) { o.OnDemand = &certs.OnDemand{AskURL: "ftp://x"} }), "not an http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := certs.New(context.Background(), tc.opts)
			if err == nil {
				m.Close()
				t.Fatal("New accepted invalid options")
			}
			if !strings.HasPrefix(err.Error(), "certs: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

func TestNewHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := certs.New(ctx, &certs.Options{DataDir: t.TempDir()}); err == nil {
		t.Fatal("New ignored a cancelled context")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	m, err := certs.New(context.Background(), &certs.Options{DataDir: t.TempDir(), PollInterval: 10})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
