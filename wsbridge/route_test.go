package wsbridge_test

import (
	"strings"
	"testing"

	"github.com/dualgate/dualgate/wsbridge"
)

func TestParseRoute(t *testing.T) {
	tests := []struct {
		name, spec string
		path       string
		kind       wsbridge.UpstreamKind
		addr       string
		proxy      wsbridge.ProxyHeader
		err        string // substring of the error; "" means valid
	}{
		{name: "tcp", spec: "/stream=tcp://127.0.0.1:9000", path: "/stream", kind: wsbridge.KindTCP, addr: "127.0.0.1:9000"},
		{name: "tcp-name", spec: "/a/b=tcp://backend.internal:80", path: "/a/b", kind: wsbridge.KindTCP, addr: "backend.internal:80"},
		{name: "tcp-v6", spec: "/x=tcp://[::1]:9000", path: "/x", kind: wsbridge.KindTCP, addr: "[::1]:9000"},
		{name: "tcp-proxy-v1", spec: "/x=tcp://127.0.0.1:1?proxy=v1", path: "/x", kind: wsbridge.KindTCP, addr: "127.0.0.1:1", proxy: wsbridge.ProxyV1},
		{name: "unix-proxy-v2", spec: "/db=unix:///run/app.sock?proxy=v2", path: "/db", kind: wsbridge.KindUnix, addr: "/run/app.sock", proxy: wsbridge.ProxyV2},
		{name: "ws", spec: "/f=ws://127.0.0.1:8080/feed?x=1", path: "/f", kind: wsbridge.KindWS, addr: "ws://127.0.0.1:8080/feed?x=1"},
		{name: "wss", spec: "/f=wss://feed.example/ws", path: "/f", kind: wsbridge.KindWS, addr: "wss://feed.example/ws"},
		{name: "echo", spec: "/stream=builtin:echo", path: "/stream", kind: wsbridge.KindEcho, addr: "echo"},
		{name: "root", spec: "/=builtin:echo", path: "/", kind: wsbridge.KindEcho, addr: "echo"},

		{name: "no-equals", spec: "/stream", err: "want /path=upstream"},
		{name: "relative-path", spec: "stream=builtin:echo", err: "path must start with /"},
		{name: "empty-path", spec: "=builtin:echo", err: "path must start with /"},
		{name: "dot-segment", spec: "/a/../b=builtin:echo", err: "dot segment"},
		{name: "query-in-path", spec: "/a?b=builtin:echo", err: "invalid character"},
		{name: "space-in-path", spec: "/a b=builtin:echo", err: "invalid character"},
		{name: "double-slash", spec: "//a=builtin:echo", err: "empty segment"},
		{name: "empty-upstream", spec: "/a=", err: "want tcp://host:port"},
		{name: "unknown-scheme", spec: "/a=http://x:1", err: "unknown scheme"},
		{name: "unknown-builtin", spec: "/a=builtin:cat", err: "unknown built-in"},
		{name: "tcp-no-port", spec: "/a=tcp://127.0.0.1", err: "want tcp://host:port"},
		{name: "tcp-port-0", spec: "/a=tcp://127.0.0.1:0", err: "invalid port"},
		{name: "tcp-port-big", spec: "/a=tcp://127.0.0.1:70000", err: "invalid port"},
		{name: "tcp-path", spec: "/a=tcp://127.0.0.1:9/x", err: "no path"},
		{name: "tcp-no-host", spec: "/a=tcp://:9000", err: "want tcp://host:port"},
		{name: "tcp-userinfo", spec: "/a=tcp://u:p@h:1", err: "user information"},
		{name: "tcp-bad-proxy", spec: "/a=tcp://h:1?proxy=v3", err: "want v1 or v2"},
		{name: "tcp-unknown-option", spec: "/a=tcp://h:1?timeout=3", err: "unknown option"},
		{name: "tcp-proxy-twice", spec: "/a=tcp://h:1?proxy=v1&proxy=v2", err: "more than once"},
		{name: "unix-two-slashes", spec: "/a=unix://run/app.sock", err: "three slashes"},
		{name: "unix-no-path", spec: "/a=unix://", err: "want unix:///absolute/path"},
		{name: "unix-dir", spec: "/a=unix:///run/", err: "want unix:///absolute/path"},
		{name: "ws-no-host", spec: "/a=ws:///x", err: "missing host"},
		{name: "ws-fragment", spec: "/a=ws://h/x#f", err: "fragment"},
		{name: "ws-bad-port", spec: "/a=ws://h:99999/", err: "invalid port"},
		{name: "control-char", spec: "/a=tcp://h:1\n", err: "control"},
		{name: "too-long", spec: "/" + strings.Repeat("a", wsbridge.MaxRouteSpecLen) + "=builtin:echo", err: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := wsbridge.ParseRoute(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "wsbridge: ") {
					t.Fatalf("ParseRoute(%q) error = %v, want one containing %q", tt.spec, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRoute(%q): %v", tt.spec, err)
			}
			if r.Path != tt.path || r.Upstream.Kind != tt.kind || r.Upstream.Addr != tt.addr || r.Upstream.Proxy != tt.proxy {
				t.Fatalf("ParseRoute(%q) = %+v", tt.spec, r)
			}
			if r.String() != tt.spec {
				t.Fatalf("String() = %q, want %q", r.String(), tt.spec)
			}
		})
	}
}

// TestParseRouteTruncated checks that cutting a valid specification short
// is rejected wherever the cut leaves no valid specification.
func TestParseRouteTruncated(t *testing.T) {
	for _, spec := range []string{
		"/stream=tcp://127.0.0.1:9000?proxy=v2",
		"/db=unix:///run/app.sock",
		"/feed=wss://feed.example:8443/ws",
		"/stream=builtin:echo",
	} {
		for i := 0; i < len(spec); i++ {
			cut := spec[:i]
			r, err := wsbridge.ParseRoute(cut)
			if err == nil {
				// A few prefixes are themselves valid (a shorter port or
				// path); they must then describe what they say.
				if r.String() != cut {
					t.Fatalf("ParseRoute(%q) accepted as %q", cut, r.String())
				}
				continue
			}
		}
	}
	for _, cut := range []string{"/s", "/s=", "/s=tcp://", "/s=tcp://127.0.0.1:", "/s=unix://", "/s=builtin:ech", "/s=ws://", "/s=tcp://h:1?proxy=v"} {
		if _, err := wsbridge.ParseRoute(cut); err == nil {
			t.Errorf("ParseRoute(%q) accepted a truncated specification", cut)
		}
	}
}

func TestRoutes(t *testing.T) {
	rt, err := wsbridge.ParseRoutes("/a=builtin:echo", "/b=tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if rt.Len() != 2 {
		t.Fatalf("Len = %d", rt.Len())
	}
	if r, ok := rt.Lookup("/b"); !ok || r.Upstream.Kind != wsbridge.KindTCP {
		t.Fatalf("Lookup(/b) = %+v %v", r, ok)
	}
	for _, p := range []string{"/a/", "/A", "/", "", "/b/c"} {
		if _, ok := rt.Lookup(p); ok {
			t.Errorf("Lookup(%q) matched; want exact matches only", p)
		}
	}
	if all := rt.All(); len(all) != 2 || all[0].Path != "/a" || all[1].Path != "/b" {
		t.Fatalf("All = %v", all)
	}
	if _, err := wsbridge.ParseRoutes("/a=builtin:echo", "/a=tcp://h:1"); err == nil || !strings.Contains(err.Error(), "duplicate route") {
		t.Fatalf("duplicate paths: err = %v", err)
	}
	if _, err := wsbridge.NewRoutes(wsbridge.Route{Path: "/x"}); err == nil {
		t.Fatal("a route without upstream was accepted")
	}
	var nilTable *wsbridge.Routes
	if _, ok := nilTable.Lookup("/a"); ok || nilTable.Len() != 0 {
		t.Fatal("nil table is not empty")
	}
	def := wsbridge.DefaultRoutes()
	if r, ok := def.Lookup("/stream"); !ok || r.Upstream.Kind != wsbridge.KindEcho {
		t.Fatalf("default routes: %v", def.All())
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/stream=tcp://127.0.0.1:9000", "/x=unix:///a/b?proxy=v1", "/f=wss://h:1/p?q=1",
		"/stream=builtin:echo", "=", "/a=tcp://[::1]:1?proxy=v2", "/%=ws://h", "/a=ws://h:/",
		"/a=tcp://h:1?proxy=v1&proxy=v1", "/a=unix://h/x", "/\x00=tcp://h:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := wsbridge.ParseRoute(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "wsbridge: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		// Round trip: a valid route prints back to itself and re-parses to
		// the same route.
		if r.String() != spec {
			t.Fatalf("String() = %q, want %q", r.String(), spec)
		}
		r2, err := wsbridge.ParseRoute(r.String())
		if err != nil || r2 != r {
			t.Fatalf("re-parse of %q: %+v, %v", spec, r2, err)
		}
		if r.Path == "" || r.Path[0] != '/' || r.Upstream.Kind == 0 || r.Upstream.Addr == "" {
			t.Fatalf("accepted an incomplete route %+v", r)
		}
		if _, err := wsbridge.NewRoutes(r, r); err == nil {
			t.Fatal("duplicate accepted")
		}
	})
}
