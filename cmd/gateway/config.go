package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dualgate/dualgate/certs"
	"github.com/dualgate/dualgate/legacy"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
	"github.com/dualgate/dualgate/wsbridge"
)

// envPrefix is the prefix of the environment variable read for each flag:
// -some-name is also DUALGATE_SOME_NAME. A flag on the command line wins.
const envPrefix = "DUALGATE_"

// config is the gateway's whole configuration, from flags, environment and
// the config file (in that order of precedence).
type config struct {
	Listen     string
	DataDir    string
	ConfigFile string

	SniffTimeout   time.Duration
	IPCacheTTL     time.Duration
	IPCacheSize    int
	MaxConns       int
	MaxConnsPerIP  int
	MaxSniffing    int
	TrustedProxies prefixList

	TLSHandshakeTimeout time.Duration
	ReadHeaderTimeout   time.Duration
	IdleTimeout         time.Duration

	TLS                  string
	CertFile             string
	KeyFile              string
	CertPollInterval     time.Duration
	DevNames             stringList
	ACMEDomains          stringList
	ACMEEmail            string
	ACMECA               string
	ACMECARoot           string
	ACMEDisableHTTP01    bool
	ACMEDisableTLSALPN01 bool
	ACMEOnDemandAllow    stringList
	ACMEOnDemandAsk      string

	Window           int
	PingInterval     time.Duration
	DeadTimeout      time.Duration
	HandshakeTimeout time.Duration
	CloseTimeout     time.Duration
	DetachedTTL      time.Duration
	MaxSessions      int
	MaxSessionsPerIP int
	MaxMessageSize   int
	AlwaysSeal       bool

	Routes              stringList
	StreamRoute         string
	Origins             stringList
	UpstreamDialTimeout time.Duration
	BridgeBuffer        int

	Legacy              bool
	LegacyEncrypt       bool
	LegacyResendBuffer  int
	LegacyReconnectWait time.Duration
	LegacyRoute         string
	LegacyWSPath        string

	DrainTimeout time.Duration
	DebugListen  string

	LogFormat string
	LogLevel  slog.Level

	// values holds every flag's final value as text, to tell on SIGHUP
	// which settings changed.
	values map[string]string

	// Derived by validate.
	tlsMode     certs.Mode
	routes      *wsbridge.Routes
	acmeDomains []string
}

// flagGroup orders the flags in -help.
type flagGroup struct {
	title string
	names []string
}

var flagGroups = []flagGroup{
	{"Listening", []string{"listen", "data-dir", "config"}},
	{"Sniffing and limits", []string{"sniff-timeout", "ip-cache-ttl", "ip-cache-size", "max-conns", "max-conns-per-ip", "max-sniffing", "trusted-proxies"}},
	{"TLS and HTTP", []string{"tls-handshake-timeout", "read-header-timeout", "idle-timeout"}},
	{"Certificates", []string{"tls", "cert", "key", "cert-poll-interval", "dev-names", "acme-domains", "acme-email", "acme-ca", "acme-ca-root",
		"acme-disable-http01", "acme-disable-tlsalpn01", "acme-on-demand-allow", "acme-on-demand-ask"}},
	{"Sessions", []string{"window", "ping-interval", "dead-timeout", "handshake-timeout", "close-timeout", "detached-ttl", "max-sessions", "max-sessions-per-ip", "max-message-size", "always-seal"}},
	{"Routes and upstreams", []string{"route", "stream-route", "origin", "upstream-dial-timeout", "bridge-buffer"}},
	{"Legacy protocol", []string{"legacy", "legacy-encrypt", "legacy-resend-buffer", "legacy-reconnect-wait", "legacy-route", "legacy-ws-path"}},
	{"Operations", []string{"drain-timeout", "debug-listen"}},
	{"Logging", []string{"log-format", "log-level"}},
}

// envName returns the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// defaultDataDir is $XDG_DATA_HOME/dualgate, else ~/.local/share/dualgate.
func defaultDataDir(getenv func(string) string) string {
	if x := getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "dualgate")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "dualgate")
	}
	return "dualgate-data"
}

func newFlagSet(c *config, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", ":8443", "`ADDR` (host:port) of the one TCP port for ws://, wss:// and the byte-stream protocol")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir(getenv), "`DIR` for the server key, the dev CA and ACME state (default $XDG_DATA_HOME/dualgate, else ~/.local/share/dualgate)")
	fs.StringVar(&c.ConfigFile, "config", "", "TOML `FILE` whose keys are flag names (arrays for repeatable flags); flags and environment override it; re-read on SIGHUP")

	fs.DurationVar(&c.SniffTimeout, "sniff-timeout", listener.DefaultSniffTimeout, "how long a new connection may stay silent before it is ambiguous")
	fs.DurationVar(&c.IPCacheTTL, "ip-cache-ttl", sniff.DefaultIPCacheTTL, "how long a completed TLS handshake sends the IP's silent connections to TLS")
	fs.IntVar(&c.IPCacheSize, "ip-cache-size", sniff.DefaultIPCacheSize, "most IPs remembered for the ambiguous fallback")
	fs.IntVar(&c.MaxConns, "max-conns", listener.DefaultMaxConns, "most open connections (-1: no limit)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", listener.DefaultMaxConnsPerIP, "most open connections per client IP (-1: no limit)")
	fs.IntVar(&c.MaxSniffing, "max-sniffing", listener.DefaultMaxSniffing, "most connections being classified at once")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "comma-separated `CIDRs` whose PROXY protocol headers (v1, v2) are honoured")

	fs.DurationVar(&c.TLSHandshakeTimeout, "tls-handshake-timeout", tlsmux.DefaultHandshakeTimeout, "deadline of each TLS handshake")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "deadline for reading an HTTP request's headers")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 2*time.Minute, "how long an idle HTTP keep-alive connection stays open")

	fs.StringVar(&c.TLS, "tls", "dev", "certificate `SOURCE`: dev (local CA in the data dir), files (-cert/-key), acme, or off (ws:// only)")
	fs.StringVar(&c.CertFile, "cert", "", "PEM certificate chain `FILE` (-tls files; reloaded on SIGHUP and on change)")
	fs.StringVar(&c.KeyFile, "key", "", "PEM private key `FILE` (-tls files)")
	fs.DurationVar(&c.CertPollInterval, "cert-poll-interval", certs.DefaultPollInterval, "how often -tls files re-reads the files (and dev mode checks its leaf); negative: never")
	c.DevNames = newStringList(commaFields)
	fs.Var(&c.DevNames, "dev-names", "extra `NAMES` (comma-separated DNS names or IPs) for the dev certificate, besides localhost, 127.0.0.1, ::1; repeatable")
	c.ACMEDomains = newStringList(commaFields)
	fs.Var(&c.ACMEDomains, "acme-domains", "`NAMES` (comma-separated) to obtain certificates for (-tls acme); repeatable")
	fs.StringVar(&c.ACMEEmail, "acme-email", "", "ACME account contact `EMAIL`")
	fs.StringVar(&c.ACMECA, "acme-ca", certs.DefaultACMECA, "ACME directory `URL`")
	fs.StringVar(&c.ACMECARoot, "acme-ca-root", "", "PEM `FILE` of extra roots trusted for the ACME server (private CAs such as Pebble)")
	fs.BoolVar(&c.ACMEDisableHTTP01, "acme-disable-http01", false, "do not answer the HTTP-01 challenge")
	fs.BoolVar(&c.ACMEDisableTLSALPN01, "acme-disable-tlsalpn01", false, "do not answer the TLS-ALPN-01 challenge")
	c.ACMEOnDemandAllow = newStringList(commaFields)
	fs.Var(&c.ACMEOnDemandAllow, "acme-on-demand-allow", "`NAMES` (comma-separated) that may get a certificate on demand at their first handshake; repeatable")
	fs.StringVar(&c.ACMEOnDemandAsk, "acme-on-demand-ask", "", "`URL` asked (GET URL?domain=NAME, 200 = yes) before an on-demand certificate")

	fs.IntVar(&c.Window, "window", resume.DefaultWindow, "receive window per session and direction in `BYTES` (16 KiB to 16 MiB)")
	fs.DurationVar(&c.PingInterval, "ping-interval", resume.DefaultPingInterval, "a session that sent nothing this long sends a ping")
	fs.DurationVar(&c.DeadTimeout, "dead-timeout", resume.DefaultDeadTimeout, "a transport silent this long is dead (half-open detection)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", resume.DefaultHandshakeTimeout, "deadline of a session handshake")
	fs.DurationVar(&c.CloseTimeout, "close-timeout", resume.DefaultCloseTimeout, "how long a closing session waits for its client's CLOSE, and a closed bridge for its upstream's end (bounds a drain's wait for clients that are away)")
	fs.DurationVar(&c.DetachedTTL, "detached-ttl", resume.DefaultDetachedTTL, "how long a session without a transport waits for its client to resume")
	fs.IntVar(&c.MaxSessions, "max-sessions", resume.DefaultMaxSessions, "most sessions (handshakes included)")
	fs.IntVar(&c.MaxSessionsPerIP, "max-sessions-per-ip", resume.DefaultMaxSessionsPerIP, "most sessions per client IP")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", resume.DefaultMaxMessageSize, "largest message in `BYTES` a session assembles")
	fs.BoolVar(&c.AlwaysSeal, "always-seal", false, "seal every session frame with the session's AEAD even inside TLS (default: unpinned clients inside TLS 1.3 rely on TLS alone, docs/protocol.md §5.7)")

	c.Routes = newStringList(oneItem, wsbridge.DefaultRouteSpec)
	fs.Var(&c.Routes, "route", "`/PATH=UPSTREAM` (tcp://host:port, unix:///path, ws://, wss://, builtin:echo; ?proxy=v1|v2 sends a PROXY header to tcp/unix); repeatable; replaces the default")
	fs.StringVar(&c.StreamRoute, "stream-route", "", "route `PATH` whose upstream serves byte-stream clients (tcp://, tls://), which carry no path (default: the first -route)")
	c.Origins = newStringList(commaFields)
	fs.Var(&c.Origins, "origin", "browser `ORIGINS` (host patterns such as app.example.com or *.example.com, comma-separated) allowed besides same-origin; repeatable")
	fs.DurationVar(&c.UpstreamDialTimeout, "upstream-dial-timeout", wsbridge.DefaultDialTimeout, "deadline of opening an upstream connection")
	fs.IntVar(&c.BridgeBuffer, "bridge-buffer", wsbridge.DefaultBufferSize, "copy buffer in `BYTES` per direction of a busy byte-stream bridge (pooled, held only while bytes move; 4 KiB to 4 MiB)")

	fs.BoolVar(&c.Legacy, "legacy", false, "also serve legacy snet clients (weak cryptography: see docs/legacy.md)")
	fs.BoolVar(&c.LegacyEncrypt, "legacy-encrypt", true, "RC4-encrypt legacy session data (must match the clients)")
	fs.IntVar(&c.LegacyResendBuffer, "legacy-resend-buffer", legacy.DefaultResendBuffer, "`BYTES` a legacy session keeps to resend after a reconnect")
	fs.DurationVar(&c.LegacyReconnectWait, "legacy-reconnect-wait", legacy.DefaultReconnectWait, "how long a legacy session waits for its client to reconnect")
	fs.StringVar(&c.LegacyRoute, "legacy-route", "", "route `PATH` whose upstream legacy sessions are bridged to (default: the first -route)")
	fs.StringVar(&c.LegacyWSPath, "legacy-ws-path", "", "URL `PATH` carrying the legacy protocol in binary WebSocket frames (empty: none)")

	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "how long SIGTERM/SIGINT waits for sessions to drain before closing what is left")
	fs.StringVar(&c.DebugListen, "debug-listen", "", "`ADDR` (host:port, keep it private, e.g. 127.0.0.1:6060) serving Go profiles at /debug/pprof/ (empty: off)")

	fs.StringVar(&c.LogFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	return fs
}

// parseConfig reads the configuration from args, the environment (through
// getenv) and the config file, and validates it. Precedence: flag, then
// environment, then file, then the default. -help prints the usage to out
// and returns flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	c := new(config)
	fs := newFlagSet(c, getenv)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, fs)
			return nil, err
		}
		return nil, fmt.Errorf("gateway: %w (see -help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("gateway: unexpected argument %q (see -help)", fs.Arg(0))
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		v := getenv(envName(f.Name))
		if v == "" {
			return
		}
		set[f.Name] = true
		if err := setFromEnv(fs, f, v); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %s=%q: %w", envName(f.Name), v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.ConfigFile != "" {
		if err := loadConfigFile(fs, c.ConfigFile, set); err != nil {
			return nil, err
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.values = make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { c.values[f.Name] = f.Value.String() })
	return c, nil
}

// reloadable lists the settings a SIGHUP applies; the others need a
// restart.
var reloadable = map[string]bool{"route": true, "config": true}

// changedKeys returns the settings that differ between c and n and that a
// reload does not apply.
func (c *config) changedKeys(n *config) []string {
	var out []string
	for k, v := range n.values {
		if !reloadable[k] && c.values[k] != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// setFromEnv sets flag f from an environment value. A repeatable flag takes
// several values separated by white space.
func setFromEnv(fs *flag.FlagSet, f *flag.Flag, v string) error {
	if _, ok := f.Value.(*stringList); ok {
		for _, item := range strings.Fields(v) {
			if err := fs.Set(f.Name, item); err != nil {
				return err
			}
		}
		return nil
	}
	return fs.Set(f.Name, v)
}

func (c *config) validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gateway: -%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (%v)", c.Listen, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	if c.DebugListen != "" {
		if _, _, err := net.SplitHostPort(c.DebugListen); err != nil {
			bad("debug-listen", "%q is not host:port (%v)", c.DebugListen, err)
		}
	}
	for name, d := range map[string]time.Duration{
		"sniff-timeout": c.SniffTimeout, "ip-cache-ttl": c.IPCacheTTL, "tls-handshake-timeout": c.TLSHandshakeTimeout,
		"read-header-timeout": c.ReadHeaderTimeout, "idle-timeout": c.IdleTimeout, "drain-timeout": c.DrainTimeout,
		"ping-interval": c.PingInterval, "dead-timeout": c.DeadTimeout, "handshake-timeout": c.HandshakeTimeout,
		"close-timeout": c.CloseTimeout, "detached-ttl": c.DetachedTTL, "upstream-dial-timeout": c.UpstreamDialTimeout, "legacy-reconnect-wait": c.LegacyReconnectWait,
	} {
		if d <= 0 {
			bad(name, "must be positive, got %v", d)
		}
	}
	for name, n := range map[string]int{
		"ip-cache-size": c.IPCacheSize, "max-sniffing": c.MaxSniffing, "max-sessions": c.MaxSessions,
		"max-sessions-per-ip": c.MaxSessionsPerIP, "max-message-size": c.MaxMessageSize, "legacy-resend-buffer": c.LegacyResendBuffer,
	} {
		if n <= 0 {
			bad(name, "must be positive, got %d", n)
		}
	}
	if c.MaxConns == 0 || c.MaxConns < -1 {
		bad("max-conns", "must be positive or -1, got %d", c.MaxConns)
	}
	if c.MaxConnsPerIP == 0 || c.MaxConnsPerIP < -1 {
		bad("max-conns-per-ip", "must be positive or -1, got %d", c.MaxConnsPerIP)
	}
	if c.BridgeBuffer < 4<<10 || c.BridgeBuffer > 4<<20 {
		bad("bridge-buffer", "must be from 4096 to 4194304 bytes, got %d", c.BridgeBuffer)
	}
	if c.Window < resume.MinWindow || c.Window > resume.MaxWindow {
		bad("window", "must be from %d to %d bytes, got %d", resume.MinWindow, resume.MaxWindow, c.Window)
	}
	if c.PingInterval > 0 && c.DeadTimeout > 0 && c.DeadTimeout <= c.PingInterval {
		bad("dead-timeout", "must be longer than -ping-interval (%v), got %v", c.PingInterval, c.DeadTimeout)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "must be text or json, got %q", c.LogFormat)
	}
	c.validateCerts(bad)
	c.validateRoutes(bad)
	// Sort for a stable message (the maps above are unordered).
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func (c *config) validateCerts(bad func(flag, format string, args ...any)) {
	mode, err := certs.ParseMode(c.TLS)
	if err != nil {
		bad("tls", "must be dev, files, acme or off, got %q", c.TLS)
		return
	}
	c.tlsMode = mode
	switch mode {
	case certs.ModeFiles:
		if c.CertFile == "" || c.KeyFile == "" {
			bad("tls", "files needs -cert and -key")
		}
	case certs.ModeACME:
		if len(c.ACMEDomains.vals) == 0 && len(c.ACMEOnDemandAllow.vals) == 0 && c.ACMEOnDemandAsk == "" {
			bad("acme-domains", "-tls acme needs domains (or on-demand names)")
		}
		if c.ACMEDisableHTTP01 && c.ACMEDisableTLSALPN01 {
			bad("acme-disable-tlsalpn01", "both ACME challenges are disabled")
		}
		if u, err := url.Parse(c.ACMECA); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("acme-ca", "%q is not an http(s) URL", c.ACMECA)
		}
	}
	if len(c.ACMEDomains.vals) > 0 {
		names, err := certs.ParseNames(strings.Join(c.ACMEDomains.vals, ","))
		if err != nil {
			bad("acme-domains", "%v", err)
		}
		c.acmeDomains = names
	}
	if c.ACMEOnDemandAsk != "" {
		if u, err := url.Parse(c.ACMEOnDemandAsk); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("acme-on-demand-ask", "%q is not an http(s) URL", c.ACMEOnDemandAsk)
		}
	}
}

func (c *config) validateRoutes(bad func(flag, format string, args ...any)) {
	routes, err := wsbridge.ParseRoutes(c.Routes.vals...)
	if err != nil {
		bad("route", "%v", err)
		return
	}
	c.routes = routes
	all := routes.All()
	if len(all) == 0 {
		bad("route", "at least one route is needed")
		return
	}
	if c.StreamRoute == "" {
		c.StreamRoute = all[0].Path
	}
	if c.LegacyRoute == "" {
		c.LegacyRoute = all[0].Path
	}
	if _, ok := routes.Lookup(c.StreamRoute); !ok {
		bad("stream-route", "%q is not one of the -route paths", c.StreamRoute)
	}
	if c.Legacy {
		if _, ok := routes.Lookup(c.LegacyRoute); !ok {
			bad("legacy-route", "%q is not one of the -route paths", c.LegacyRoute)
		}
	}
	if p := c.LegacyWSPath; p != "" {
		if !strings.HasPrefix(p, "/") {
			bad("legacy-ws-path", "must start with /, got %q", p)
		} else if _, ok := routes.Lookup(p); ok {
			bad("legacy-ws-path", "%q is also a -route path", p)
		} else if reservedPath(p) {
			bad("legacy-ws-path", "%q is a path the gateway serves itself", p)
		}
	}
	for _, r := range routes.All() {
		if reservedPath(r.Path) {
			bad("route", "%q is a path the gateway serves itself", r.Path)
		}
	}
}

// reservedPath reports whether p is served by the gateway itself.
func reservedPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/metrics", "/":
		return true
	}
	return strings.HasPrefix(p, "/.well-known/acme-challenge/")
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: gateway [flags]

Dualgate serves ws:// and wss:// (and the resumable byte stream) on one TCP port
and bridges each resumable session to the upstream of its route.

Every flag -some-name can also be set with the environment variable
DUALGATE_SOME_NAME (repeatable flags: values separated by spaces), or as the key
some-name in the -config TOML file (repeatable flags: arrays). Precedence:
flag, environment, file, default. SIGHUP reloads certificates and routes;
SIGTERM drains.
`)
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			arg, help := flag.UnquoteUsage(f)
			if _, ok := f.Value.(*stringList); ok && arg == "value" {
				arg = "VALUE"
			}
			line := "  -" + f.Name
			if arg != "" {
				line += " " + arg
			}
			fmt.Fprintf(w, "%s\n      %s\n      (env %s", line, help, envName(f.Name))
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(w, ", default %q", f.DefValue)
			}
			fmt.Fprint(w, ")\n")
		}
	}
}
