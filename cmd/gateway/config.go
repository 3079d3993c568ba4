package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
	"github.com/dualgate/dualgate/tlsmux"
)

// envPrefix is the prefix of the environment variable read for each flag:
// -some-name is also DUALGATE_SOME_NAME. A flag on the command line wins.
const envPrefix = "DUALGATE_"

// config is the gateway's whole configuration, from flags and environment.
type config struct {
	Listen  string
	DataDir string

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
	ShutdownTimeout     time.Duration

	LogFormat string
	LogLevel  slog.Level
}

// flagGroup orders the flags in -help.
type flagGroup struct {
	title string
	names []string
}

var flagGroups = []flagGroup{
	{"Listening", []string{"listen", "data-dir"}},
	{"Sniffing and limits", []string{"sniff-timeout", "ip-cache-ttl", "ip-cache-size", "max-conns", "max-conns-per-ip", "max-sniffing", "trusted-proxies"}},
	{"TLS and HTTP", []string{"tls-handshake-timeout", "read-header-timeout", "idle-timeout", "shutdown-timeout"}},
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
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir(getenv), "`DIR` for keys and certificates (default $XDG_DATA_HOME/dualgate, else ~/.local/share/dualgate)")

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
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long SIGINT/SIGTERM waits for connections to finish")

	fs.StringVar(&c.LogFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	return fs
}

// parseConfig reads the configuration from args and the environment
// (through getenv) and validates it. -help prints the usage to out and
// returns flag.ErrHelp.
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
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("gateway: %s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
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
	for name, d := range map[string]time.Duration{
		"sniff-timeout": c.SniffTimeout, "ip-cache-ttl": c.IPCacheTTL, "tls-handshake-timeout": c.TLSHandshakeTimeout,
		"read-header-timeout": c.ReadHeaderTimeout, "idle-timeout": c.IdleTimeout, "shutdown-timeout": c.ShutdownTimeout,
	} {
		if d <= 0 {
			bad(name, "must be positive, got %v", d)
		}
	}
	if c.IPCacheSize <= 0 {
		bad("ip-cache-size", "must be positive, got %d", c.IPCacheSize)
	}
	if c.MaxSniffing <= 0 {
		bad("max-sniffing", "must be positive, got %d", c.MaxSniffing)
	}
	if c.MaxConns == 0 || c.MaxConns < -1 {
		bad("max-conns", "must be positive or -1, got %d", c.MaxConns)
	}
	if c.MaxConnsPerIP == 0 || c.MaxConnsPerIP < -1 {
		bad("max-conns-per-ip", "must be positive or -1, got %d", c.MaxConnsPerIP)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "must be text or json, got %q", c.LogFormat)
	}
	// Sort for a stable message (the map above is unordered).
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// prefixList is a flag.Value of comma-separated CIDRs or bare IPs.
type prefixList []netip.Prefix

func (p *prefixList) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, x := range *p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

func (p *prefixList) Set(v string) error {
	var out prefixList
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(f); err == nil {
			out = append(out, pr.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR or IP address", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*p = out
	return nil
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: gateway [flags]

Dualgate serves ws:// and wss:// (and the resumable byte stream) on one TCP port.
Every flag -some-name can also be set with the environment variable
DUALGATE_SOME_NAME; a flag on the command line wins.
`)
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			if f == nil {
				continue
			}
			arg, help := flag.UnquoteUsage(f)
			line := "  -" + f.Name
			if arg != "" {
				line += " " + arg
			}
			fmt.Fprintf(w, "%s\n      %s\n      (env %s", line, help, envName(f.Name))
			if f.DefValue != "" {
				fmt.Fprintf(w, ", default %q", f.DefValue)
			}
			fmt.Fprint(w, ")\n")
		}
	}
}
