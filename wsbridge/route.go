package wsbridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// UpstreamKind is the kind of service a route forwards to.
type UpstreamKind uint8

// Upstream kinds.
const (
	KindTCP  UpstreamKind = iota + 1 // tcp://host:port, a byte stream
	KindUnix                         // unix:///path, a byte stream
	KindWS                           // ws://… or wss://…, messages keep their boundaries
	KindEcho                         // builtin:echo, an in-process echo that keeps message boundaries
)

// String returns the scheme of the kind.
func (k UpstreamKind) String() string {
	switch k {
	case KindTCP:
		return "tcp"
	case KindUnix:
		return "unix"
	case KindWS:
		return "ws"
	case KindEcho:
		return "builtin"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ProxyHeader selects the PROXY protocol header the bridge writes first on a
// tcp or unix upstream connection, so the backend sees the real client address.
type ProxyHeader uint8

// PROXY protocol header versions.
const (
	ProxyNone ProxyHeader = 0 // no header
	ProxyV1   ProxyHeader = 1 // human-readable version 1
	ProxyV2   ProxyHeader = 2 // binary version 2
)

// Specification limits of a route.
const (
	// MaxRouteSpecLen bounds the length of a route specification.
	MaxRouteSpecLen = 4096
)

// Upstream is a parsed upstream address. The zero value is not a valid
// upstream; obtain one from ParseUpstream. An Upstream is immutable and safe
// for concurrent use.
type Upstream struct {
	// Kind is the kind of upstream.
	Kind UpstreamKind
	// Addr is host:port for KindTCP, the socket path for KindUnix, the full
	// URL (ws:// or wss://) for KindWS and "echo" for KindEcho.
	Addr string
	// Proxy is the PROXY protocol header sent first to a tcp or unix
	// upstream, set by the query parameter proxy=v1 or proxy=v2.
	Proxy ProxyHeader

	spec     string
	loopback bool // KindTCP with a loopback IP literal: dialled without TCP keep-alive
}

// String returns the upstream as it was written.
func (u Upstream) String() string { return u.spec }

// Route maps an exact URL path to an upstream. A Route is immutable and safe
// for concurrent use.
type Route struct {
	// Path is the exact URL path of the route, starting with "/".
	Path string
	// Upstream is where sessions of the route are bridged to.
	Upstream Upstream
}

// String returns the route in the form ParseRoute accepts.
func (r Route) String() string { return r.Path + "=" + r.Upstream.String() }

// ParseRoute parses a route specification of the form /path=upstream, for
// example "/stream=tcp://127.0.0.1:9000". The path must start with "/" and is
// matched exactly; see ParseUpstream for the upstream forms.
func ParseRoute(spec string) (Route, error) {
	if len(spec) > MaxRouteSpecLen {
		return Route{}, fmt.Errorf("wsbridge: route specification longer than %d bytes", MaxRouteSpecLen)
	}
	path, up, ok := strings.Cut(spec, "=")
	if !ok {
		return Route{}, fmt.Errorf("wsbridge: route %q: want /path=upstream", spec)
	}
	if err := checkPath(path); err != nil {
		return Route{}, fmt.Errorf("wsbridge: route %q: %w", spec, err)
	}
	u, err := ParseUpstream(up)
	if err != nil {
		return Route{}, fmt.Errorf("wsbridge: route %q: %w", spec, err)
	}
	return Route{Path: path, Upstream: u}, nil
}

func checkPath(p string) error {
	if p == "" || p[0] != '/' {
		return errors.New("path must start with /")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return fmt.Errorf("path contains the invalid character %q", c)
		}
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return errors.New("path contains a dot segment")
		}
	}
	if strings.Contains(p, "//") {
		return errors.New("path contains an empty segment")
	}
	return nil
}

// ParseUpstream parses an upstream address:
//
//	tcp://host:port[?proxy=v1|v2]   a TCP service (host may be a name or an IP literal)
//	unix:///path/to/socket[?proxy=v1|v2]
//	ws://host[:port]/path[?query]   a WebSocket service (wss:// for TLS)
//	builtin:echo                    the built-in message-preserving echo
func ParseUpstream(s string) (Upstream, error) {
	if s == "builtin:echo" {
		return Upstream{Kind: KindEcho, Addr: "echo", spec: s}, nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		if strings.HasPrefix(s, "builtin:") {
			return Upstream{}, fmt.Errorf("unknown built-in upstream %q (have builtin:echo)", s)
		}
		return Upstream{}, fmt.Errorf("upstream %q: want tcp://host:port, unix:///path, ws://…, wss://… or builtin:echo", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return Upstream{}, fmt.Errorf("upstream %q contains a control or space character", s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
	}
	if u.User != nil {
		return Upstream{}, fmt.Errorf("upstream %q: user information is not allowed", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return Upstream{}, fmt.Errorf("upstream %q: fragment is not allowed", s)
	}
	switch strings.ToLower(scheme) {
	case "tcp":
		if u.Path != "" || u.Opaque != "" {
			return Upstream{}, fmt.Errorf("upstream %q: tcp upstream takes no path", s)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return Upstream{}, fmt.Errorf("upstream %q: want tcp://host:port", s)
		}
		if err := checkPort(port); err != nil {
			return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
		}
		px, err := parseProxyQuery(u.RawQuery)
		if err != nil {
			return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
		}
		ip, err := netip.ParseAddr(host)
		loopback := err == nil && ip.IsLoopback()
		return Upstream{Kind: KindTCP, Addr: net.JoinHostPort(host, port), Proxy: px, spec: s, loopback: loopback}, nil
	case "unix":
		if u.Host != "" {
			return Upstream{}, fmt.Errorf("upstream %q: want unix:///absolute/path (three slashes)", s)
		}
		if u.Path == "" || u.Path[0] != '/' || strings.HasSuffix(u.Path, "/") {
			return Upstream{}, fmt.Errorf("upstream %q: want unix:///absolute/path", s)
		}
		px, err := parseProxyQuery(u.RawQuery)
		if err != nil {
			return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
		}
		return Upstream{Kind: KindUnix, Addr: u.Path, Proxy: px, spec: s}, nil
	case "ws", "wss":
		if u.Host == "" || u.Hostname() == "" {
			return Upstream{}, fmt.Errorf("upstream %q: missing host", s)
		}
		if p := u.Port(); p != "" {
			if err := checkPort(p); err != nil {
				return Upstream{}, fmt.Errorf("upstream %q: %w", s, err)
			}
		} else if strings.HasSuffix(u.Host, ":") {
			return Upstream{}, fmt.Errorf("upstream %q: empty port", s)
		}
		return Upstream{Kind: KindWS, Addr: s, spec: s}, nil
	}
	return Upstream{}, fmt.Errorf("upstream %q: unknown scheme %q (want tcp, unix, ws, wss or builtin:echo)", s, scheme)
}

func checkPort(p string) error {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || p[0] == '0' {
		return fmt.Errorf("invalid port %q", p)
	}
	return nil
}

func parseProxyQuery(raw string) (ProxyHeader, error) {
	if raw == "" {
		return ProxyNone, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return 0, fmt.Errorf("bad query: %w", err)
	}
	px := ProxyNone
	for k, vs := range q {
		if k != "proxy" {
			return 0, fmt.Errorf("unknown option %q (have proxy=v1|v2)", k)
		}
		if len(vs) != 1 {
			return 0, errors.New("option proxy given more than once")
		}
		switch vs[0] {
		case "v1":
			px = ProxyV1
		case "v2":
			px = ProxyV2
		default:
			return 0, fmt.Errorf("proxy=%q: want v1 or v2", vs[0])
		}
	}
	return px, nil
}

// Routes is an immutable table of routes keyed by exact path. Build one with
// NewRoutes or ParseRoutes. A nil *Routes has no routes. Routes is safe for
// concurrent use.
type Routes struct {
	byPath map[string]Route
	order  []string
}

// NewRoutes builds a route table. Two routes with the same path are an error.
func NewRoutes(routes ...Route) (*Routes, error) {
	t := &Routes{byPath: make(map[string]Route, len(routes))}
	for _, r := range routes {
		if err := checkPath(r.Path); err != nil {
			return nil, fmt.Errorf("wsbridge: route %q: %w", r.Path, err)
		}
		if r.Upstream.Kind == 0 {
			return nil, fmt.Errorf("wsbridge: route %q has no upstream", r.Path)
		}
		if _, dup := t.byPath[r.Path]; dup {
			return nil, fmt.Errorf("wsbridge: duplicate route for path %q", r.Path)
		}
		t.byPath[r.Path] = r
		t.order = append(t.order, r.Path)
	}
	return t, nil
}

// ParseRoutes parses each specification with ParseRoute and builds a table.
func ParseRoutes(specs ...string) (*Routes, error) {
	rs := make([]Route, 0, len(specs))
	for _, s := range specs {
		r, err := ParseRoute(s)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return NewRoutes(rs...)
}

// DefaultRoutes returns the embedded default table: /stream to builtin:echo.
func DefaultRoutes() *Routes {
	t, err := ParseRoutes(DefaultRouteSpec)
	if err != nil {
		panic(err) // the constant is valid; covered by tests
	}
	return t
}

// DefaultRouteSpec is the route of the embedded default configuration.
const DefaultRouteSpec = "/stream=builtin:echo"

// Lookup returns the route for an exact path.
func (t *Routes) Lookup(path string) (Route, bool) {
	if t == nil {
		return Route{}, false
	}
	r, ok := t.byPath[path]
	return r, ok
}

// All returns the routes in the order they were given.
func (t *Routes) All() []Route {
	if t == nil {
		return nil
	}
	out := make([]Route, 0, len(t.order))
	for _, p := range t.order {
		out = append(out, t.byPath[p])
	}
	return out
}

// Len returns the number of routes.
func (t *Routes) Len() int {
	if t == nil {
		return 0
	}
	return len(t.order)
}
