package proxydial

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// Implementation constants.
const (
	// DefaultHandshakeTimeout bounds a dial (connect plus proxy handshake)
	// when the caller's context has no earlier deadline.
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultMaxConnectResponseBytes bounds the header of an HTTP proxy's
	// reply to CONNECT.
	DefaultMaxConnectResponseBytes = 16 << 10

	defaultSOCKSPort = "1080"
	defaultHTTPPort  = "80"
	// maxSOCKSCredential is the RFC 1929 limit on username and password.
	maxSOCKSCredential = 255
)

// ErrProxyAuth is matched (errors.Is) by the error of a dial that the proxy
// refused because of missing or wrong credentials. Retrying will not help.
var ErrProxyAuth = errors.New("proxydial: proxy authentication failed")

// ContextDialer is the shape of net.Dialer.DialContext. A Dialer uses one to
// open the TCP connection to the proxy, or to the target when there is no
// proxy.
type ContextDialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options configures a Dialer. A nil *Options means all defaults.
type Options struct {
	// Forward opens the TCP connection to the proxy (or to the target for a
	// direct dial). Nil means a zero net.Dialer.
	Forward ContextDialer
	// Resolver resolves target host names locally for socks5:// proxies
	// (socks5h:// and http:// leave names to the proxy). Nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
	// HandshakeTimeout bounds each dial when the context has no earlier
	// deadline. Zero means DefaultHandshakeTimeout; negative means no bound
	// beyond the context.
	HandshakeTimeout time.Duration
	// MaxConnectResponseBytes bounds the HTTP proxy's CONNECT response
	// header. Zero means DefaultMaxConnectResponseBytes.
	MaxConnectResponseBytes int
	// Logger receives debug records about proxied dials. Nil discards them.
	Logger *slog.Logger
}

func (o *Options) cloneWithDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Forward == nil {
		c.Forward = &net.Dialer{}
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxConnectResponseBytes <= 0 {
		c.MaxConnectResponseBytes = DefaultMaxConnectResponseBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

type proxyKind int

const (
	kindDirect  proxyKind = iota
	kindSOCKS5            // local DNS
	kindSOCKS5H           // remote DNS
	kindHTTP              // CONNECT
)

// Dialer connects to TCP targets directly or through one proxy. Create it with
// New. The zero value is usable and dials directly with default options.
// A Dialer is safe for concurrent use and never modified after New.
type Dialer struct {
	kind      proxyKind
	proxyAddr string // host:port of the proxy
	redacted  string // proxy URL without password, for errors and logs
	user      string
	password  string
	hasAuth   bool
	authz     string // HTTP Proxy-Authorization value, "" without credentials
	opts      Options
	inited    bool
}

// New returns a Dialer that reaches its targets through proxyURL, or directly
// when proxyURL is nil. The URL is validated and copied; see the package
// documentation for the accepted forms.
func New(proxyURL *url.URL, opts *Options) (*Dialer, error) {
	d := &Dialer{opts: opts.cloneWithDefaults(), inited: true}
	if proxyURL == nil {
		return d, nil
	}
	d.redacted = proxyURL.Redacted()
	var defPort string
	switch strings.ToLower(proxyURL.Scheme) {
	case "socks5":
		d.kind, defPort = kindSOCKS5, defaultSOCKSPort
	case "socks5h":
		d.kind, defPort = kindSOCKS5H, defaultSOCKSPort
	case "http":
		d.kind, defPort = kindHTTP, defaultHTTPPort
	case "":
		return nil, fmt.Errorf("proxydial: proxy URL %q has no scheme (want socks5://, socks5h:// or http://)", d.redacted)
	default:
		return nil, fmt.Errorf("proxydial: unsupported proxy scheme %q in %q (want socks5://, socks5h:// or http://)", proxyURL.Scheme, d.redacted)
	}
	host := proxyURL.Hostname()
	if host == "" {
		return nil, fmt.Errorf("proxydial: proxy URL %q has no host", d.redacted)
	}
	if (proxyURL.Path != "" && proxyURL.Path != "/") || proxyURL.RawQuery != "" || proxyURL.Fragment != "" {
		return nil, fmt.Errorf("proxydial: proxy URL %q must not have a path, query or fragment", d.redacted)
	}
	port := proxyURL.Port()
	if port == "" {
		port = defPort
	}
	d.proxyAddr = net.JoinHostPort(host, port)
	if proxyURL.User != nil {
		d.hasAuth = true
		d.user = proxyURL.User.Username()
		d.password, _ = proxyURL.User.Password()
		switch d.kind {
		case kindSOCKS5, kindSOCKS5H:
			if d.user == "" || len(d.user) > maxSOCKSCredential || len(d.password) > maxSOCKSCredential {
				return nil, fmt.Errorf("proxydial: SOCKS5 username must be 1-%d bytes and password at most %d bytes", maxSOCKSCredential, maxSOCKSCredential)
			}
		case kindHTTP:
			if strings.Contains(d.user, ":") {
				return nil, errors.New("proxydial: HTTP proxy username must not contain ':' (RFC 7617)")
			}
			d.authz = "Basic " + base64.StdEncoding.EncodeToString([]byte(d.user+":"+d.password))
		}
	}
	return d, nil
}

// DialContext connects to addr ("host:port") on network "tcp", "tcp4" or
// "tcp6", through the proxy if the Dialer has one. The whole dial, including
// the proxy handshake, is bounded by ctx (and Options.HandshakeTimeout). The
// returned connection has no deadline set and supports CloseWrite when the
// underlying TCP connection does.
//
// Through socks5h:// and http:// proxies the proxy resolves addr and picks
// the address family, so "tcp4" and "tcp6" only constrain direct dials and
// the local resolution for socks5://.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil || !d.inited {
		d = &Dialer{opts: (*Options)(nil).cloneWithDefaults(), inited: true}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("proxydial: unsupported network %q (want tcp, tcp4 or tcp6)", network)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("proxydial: bad target address: %w", err)
	}
	if t := d.opts.HandshakeTimeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	var (
		c   net.Conn
		err error
	)
	switch d.kind {
	case kindDirect:
		c, err = d.opts.Forward.DialContext(ctx, network, addr)
		if err != nil {
			err = fmt.Errorf("proxydial: dial %s: %w", addr, err)
		}
	case kindSOCKS5, kindSOCKS5H:
		c, err = d.dialSOCKS(ctx, network, addr)
	case kindHTTP:
		c, err = d.dialConnect(ctx, addr)
	}
	if err != nil {
		return nil, withContextErr(ctx, err)
	}
	if d.kind != kindDirect {
		d.opts.Logger.DebugContext(ctx, "proxydial: connected through proxy", "proxy", d.redacted, "target", addr)
	}
	return c, nil
}

// withContextErr makes err match ctx.Err() when the context ended during the
// dial: the libraries underneath often report only "i/o timeout".
func withContextErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// A connection deadline set from the context's deadline can fire
		// a moment before the context's own timer.
		var ne net.Error
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cerr)
}

// dialSOCKS uses golang.org/x/net/proxy, whose SOCKS5 client bounds the
// negotiation by ctx. For socks5:// the target name is resolved here and the
// proxy is asked for each address in turn.
func (d *Dialer) dialSOCKS(ctx context.Context, network, addr string) (net.Conn, error) {
	targets := []string{addr}
	if d.kind == kindSOCKS5 {
		var err error
		if targets, err = d.resolve(ctx, network, addr); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, t := range targets {
		c, err := d.dialSOCKSOnce(ctx, t)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if errors.Is(err, ErrProxyAuth) || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (d *Dialer) resolve(ctx context.Context, network, addr string) ([]string, error) {
	host, port, _ := net.SplitHostPort(addr)
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	ips, err := d.opts.Resolver.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, fmt.Errorf("proxydial: resolve %s for socks5 proxy: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("proxydial: resolve %s for socks5 proxy: no %s addresses", host, ipNet)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	return out, nil
}

// capturingForward dials the proxy with the configured forward dialer and
// remembers the raw connection, so that DialContext can return it instead of
// the library's wrapper (which would hide CloseWrite).
type capturingForward struct {
	fwd  ContextDialer
	conn net.Conn
}

func (f *capturingForward) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := f.fwd.DialContext(ctx, network, addr)
	f.conn = c
	return c, err
}

// Dial satisfies proxy.Dialer; the SOCKS client always uses DialContext.
func (f *capturingForward) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

func (d *Dialer) dialSOCKSOnce(ctx context.Context, target string) (net.Conn, error) {
	var auth *proxy.Auth
	if d.hasAuth {
		auth = &proxy.Auth{User: d.user, Password: d.password}
	}
	fwd := &capturingForward{fwd: d.opts.Forward}
	sd, err := proxy.SOCKS5("tcp", d.proxyAddr, auth, fwd)
	if err != nil {
		return nil, fmt.Errorf("proxydial: socks5 proxy %s: %w", d.redacted, err)
	}
	c, err := sd.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		if isSOCKSAuthError(err) {
			return nil, fmt.Errorf("%w: socks5 proxy %s refused the credentials for %s: %w", ErrProxyAuth, d.redacted, target, err)
		}
		return nil, fmt.Errorf("proxydial: socks5 proxy %s: connect to %s: %w", d.redacted, target, err)
	}
	if fwd.conn != nil {
		return fwd.conn, nil
	}
	return c, nil
}

// isSOCKSAuthError recognises the authentication failures of
// golang.org/x/net/internal/socks, which exports no error values. The
// proxytest Dante tests pin these strings against a real server.
func isSOCKSAuthError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "username/password authentication failed") ||
		strings.Contains(s, "no acceptable authentication methods")
}
