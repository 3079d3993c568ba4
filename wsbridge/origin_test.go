package wsbridge

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		name     string
		host     string // the request's Host
		origin   string // "" sends no Origin header
		patterns []string
		wantErr  string // "" allowed; otherwise a substring of the error
	}{
		{name: "no Origin", host: "gw.example.com", origin: ""},
		{name: "same host", host: "gw.example.com", origin: "https://gw.example.com"},
		{name: "same host with port", host: "gw.example.com:8443", origin: "https://gw.example.com:8443"},
		{name: "same host with a path", host: "gw.example.com", origin: "https://gw.example.com/app"},
		{name: "same IPv6 host", host: "[::1]:8080", origin: "http://[::1]:8080"},
		{name: "host case differs", host: "GW.Example.com", origin: "https://gw.EXAMPLE.com"},
		{name: "other port", host: "gw.example.com:8443", origin: "https://gw.example.com:9443", wantErr: "not allowed"},
		{name: "port only in Origin", host: "gw.example.com", origin: "https://gw.example.com:8443", wantErr: "not allowed"},
		{name: "other host", host: "gw.example.com", origin: "https://evil.com", wantErr: `Origin "evil.com" is not allowed for host "gw.example.com"`},
		{name: "other host, no patterns match", host: "gw.example.com", origin: "https://evil.com",
			patterns: []string{"*.example.com", "app.example.org"}, wantErr: "not allowed"},
		{name: "suffix is not a subdomain", host: "gw.example.com", origin: "https://evilexample.com",
			patterns: []string{"*.example.com"}, wantErr: "not allowed"},
		{name: "pattern with *", host: "gw.example.com", origin: "https://app.example.com", patterns: []string{"*.example.com"}},
		{name: "second pattern", host: "gw.example.com", origin: "https://app.example.org",
			patterns: []string{"*.example.com", "app.example.org"}},
		{name: "pattern case differs", host: "gw.example.com", origin: "https://App.Example.COM", patterns: []string{"*.EXAMPLE.com"}},
		{name: "pattern without port", host: "gw.example.com", origin: "https://app.example.com:8443",
			patterns: []string{"*.example.com"}, wantErr: "not allowed"},
		{name: "pattern with port", host: "gw.example.com", origin: "http://localhost:3000", patterns: []string{"localhost:*"}},
		{name: "pattern with ?", host: "gw.example.com", origin: "https://app1.example.com", patterns: []string{"app?.example.com"}},
		{name: "bad pattern", host: "gw.example.com", origin: "https://app.example.com",
			patterns: []string{"[app.example.com"}, wantErr: `origin pattern "[app.example.com"`},
		{name: "bad pattern after a match", host: "gw.example.com", origin: "https://app.example.com",
			patterns: []string{"*.example.com", "["}},
		{name: "bad pattern, same host", host: "gw.example.com", origin: "https://gw.example.com", patterns: []string{"["}},
		{name: "null Origin", host: "gw.example.com", origin: "null", wantErr: "not a URL with a host"},
		{name: "not a URL", host: "gw.example.com", origin: "://x", wantErr: "not a URL with a host"},
		{name: "no host", host: "gw.example.com", origin: "file:///etc/passwd", wantErr: "not a URL with a host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+tc.host+"/", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			err := checkOrigin(r, tc.patterns)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatal("allowed")
			case err != nil && (!strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "wsbridge: ")):
				t.Fatalf("error %q, want one with %q", err, tc.wantErr)
			}
		})
	}
}
