package proxydial

import (
	"net/url"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	const (
		httpP  = "http://http-proxy.example:3128"
		httpsP = "http://https-proxy.example:3128"
		allP   = "socks5h://u:p@all-proxy.example:1080"
	)
	full := map[string]string{"HTTP_PROXY": httpP, "HTTPS_PROXY": httpsP, "ALL_PROXY": allP}
	tests := []struct {
		name    string
		env     map[string]string
		target  string
		want    string // "" means direct
		wantErr string
	}{
		{"wss uses HTTPS_PROXY", full, "wss://gw.example/s", httpsP, ""},
		{"https uses HTTPS_PROXY", full, "https://gw.example", httpsP, ""},
		{"ws uses HTTP_PROXY", full, "ws://gw.example/s", httpP, ""},
		{"http uses HTTP_PROXY", full, "http://gw.example:8080/", httpP, ""},
		{"tcp uses ALL_PROXY", full, "tcp://gw.example:7000", allP, ""},
		{"tls uses ALL_PROXY", full, "tls://gw.example:7000", allP, ""},
		{"wss falls back to ALL_PROXY", map[string]string{"ALL_PROXY": allP}, "wss://gw.example", allP, ""},
		{"ws falls back to ALL_PROXY", map[string]string{"all_proxy": allP}, "ws://gw.example", allP, ""},
		{"lower case wins", map[string]string{"https_proxy": httpP, "HTTPS_PROXY": httpsP}, "wss://gw.example", httpP, ""},
		{"no variables", nil, "wss://gw.example", "", ""},
		{"tcp ignores HTTPS_PROXY", map[string]string{"HTTPS_PROXY": httpsP}, "tls://gw.example:7000", "", ""},
		{"scheme-less value means http", map[string]string{"ALL_PROXY": "proxy.example:8080"}, "tcp://gw.example:1", "http://proxy.example:8080", ""},
		{"NO_PROXY domain", map[string]string{"ALL_PROXY": allP, "NO_PROXY": "example.org,gw.example"}, "tcp://gw.example:7000", "", ""},
		{"NO_PROXY subdomain", map[string]string{"ALL_PROXY": allP, "no_proxy": ".example"}, "tcp://a.gw.example:7000", "", ""},
		{"NO_PROXY other domain", map[string]string{"ALL_PROXY": allP, "NO_PROXY": "example.org"}, "tcp://gw.example:7000", allP, ""},
		{"NO_PROXY port", map[string]string{"HTTPS_PROXY": httpsP, "NO_PROXY": "gw.example:443"}, "wss://gw.example", "", ""},
		{"NO_PROXY other port", map[string]string{"HTTPS_PROXY": httpsP, "NO_PROXY": "gw.example:8443"}, "wss://gw.example", httpsP, ""},
		{"NO_PROXY CIDR", map[string]string{"ALL_PROXY": allP, "NO_PROXY": "10.0.0.0/8"}, "tcp://10.1.2.3:7000", "", ""},
		{"NO_PROXY star", map[string]string{"ALL_PROXY": allP, "NO_PROXY": "*"}, "tcp://gw.example:7000", "", ""},
		{"loopback never proxied", full, "tcp://127.0.0.1:7000", "", ""},
		{"localhost never proxied", full, "ws://localhost:8080", "", ""},
		{"IPv6 target", full, "tcp://[2001:db8::1]:7000", allP, ""},
		{"CGI refuses HTTP_PROXY", map[string]string{"HTTP_PROXY": httpP, "REQUEST_METHOD": "GET"}, "ws://gw.example", "", "CGI"},
		{"CGI allows ALL_PROXY", map[string]string{"ALL_PROXY": allP, "REQUEST_METHOD": "GET"}, "ws://gw.example", allP, ""},
		{"tcp without port", full, "tcp://gw.example", "", "no port"},
		{"no host", full, "tcp:///x", "", "no host"},
		{"malformed value", map[string]string{"ALL_PROXY": "http://u:p@[::1"}, "tcp://gw.example:1", "", "invalid proxy in environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, err := url.Parse(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fromEnv(func(k string) string { return tt.env[k] }, target)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "proxydial: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "u:p") {
					t.Fatalf("error leaks credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if got != nil {
					t.Fatalf("got proxy %v, want direct", got)
				}
				return
			}
			if got == nil || got.String() != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}
