package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dualgate/dualgate/certs"
	"github.com/dualgate/dualgate/wsbridge"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*config) bool
		wantErr string
	}{
		{name: "defaults", env: map[string]string{"HOME": "/home/u"}, check: func(c *config) bool {
			return c.Listen == ":8443" && c.DataDir == "/home/u/.local/share/dualgate" && c.SniffTimeout == 3*time.Second &&
				c.IPCacheTTL == 10*time.Second && c.IPCacheSize == 65536 && c.LogFormat == "text" && c.LogLevel == slog.LevelInfo &&
				c.TLSHandshakeTimeout == 10*time.Second && len(c.TrustedProxies) == 0
		}},
		{name: "xdg data home", env: map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/home/u"}, check: func(c *config) bool {
			return c.DataDir == "/x/dualgate"
		}},
		{name: "env", env: map[string]string{"DUALGATE_LISTEN": "127.0.0.1:0", "DUALGATE_MAX_CONNS_PER_IP": "7",
			"DUALGATE_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1", "DUALGATE_LOG_LEVEL": "debug", "DUALGATE_LOG_FORMAT": "json"},
			check: func(c *config) bool {
				return c.Listen == "127.0.0.1:0" && c.MaxConnsPerIP == 7 && c.LogLevel == slog.LevelDebug && c.LogFormat == "json" &&
					len(c.TrustedProxies) == 2 && c.TrustedProxies[1] == netip.MustParsePrefix("192.0.2.1/32")
			}},
		{name: "flag wins over env", args: []string{"-listen", "[::1]:9000", "-sniff-timeout=1s"},
			env: map[string]string{"DUALGATE_LISTEN": "127.0.0.1:1", "DUALGATE_SNIFF_TIMEOUT": "9s", "DUALGATE_MAX_SNIFFING": "5"},
			check: func(c *config) bool {
				return c.Listen == "[::1]:9000" && c.SniffTimeout == time.Second && c.MaxSniffing == 5
			}},
		{name: "close timeout", env: map[string]string{"DUALGATE_CLOSE_TIMEOUT": "750ms"}, check: func(c *config) bool {
			return c.CloseTimeout == 750*time.Millisecond
		}},
		{name: "zero close timeout", args: []string{"-close-timeout=0s"}, wantErr: "-close-timeout: must be positive"},
		{name: "unlimited", args: []string{"-max-conns=-1", "-max-conns-per-ip=-1"}, check: func(c *config) bool {
			return c.MaxConns == -1 && c.MaxConnsPerIP == -1
		}},
		{name: "bad listen", args: []string{"-listen", "8443"}, wantErr: "-listen"},
		{name: "bad port", args: []string{"-listen", ":99999"}, wantErr: "-listen: port"},
		{name: "bad env duration", env: map[string]string{"DUALGATE_SNIFF_TIMEOUT": "soon"}, wantErr: "DUALGATE_SNIFF_TIMEOUT"},
		{name: "zero duration", args: []string{"-ip-cache-ttl=0s"}, wantErr: "-ip-cache-ttl: must be positive"},
		{name: "negative size", args: []string{"-ip-cache-size=-3"}, wantErr: "-ip-cache-size"},
		{name: "zero max conns", args: []string{"-max-conns=0"}, wantErr: "-max-conns: must be positive or -1"},
		{name: "bad proxies", args: []string{"-trusted-proxies", "10.0.0.0/8,nonsense"}, wantErr: "nonsense"},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: "-log-format"},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: "log-level"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "not defined"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected argument"},
		{name: "several errors", args: []string{"-max-sniffing=0", "-log-format=x"}, wantErr: "-log-format: must be text or json, got \"x\"\ngateway: -max-sniffing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, envMap(tt.env), &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "gateway: ") {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-help"}, envMap(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	s := out.String()
	for _, want := range []string{"Listening:", "Sniffing and limits:", "Logging:", "Certificates:", "Sessions:", "Routes and upstreams:",
		"Legacy protocol:", "Operations:", "-route /PATH=UPSTREAM", `default "/stream=builtin:echo"`, "-drain-timeout", "-listen ADDR", `default ":8443"`,
		"env DUALGATE_MAX_CONNS_PER_IP", `default "3s"`, "DUALGATE_SOME_NAME"} {
		if !strings.Contains(s, want) {
			t.Errorf("help lacks %q:\n%s", want, s)
		}
	}
	// Every flag is listed in a group.
	fs := newFlagSet(new(config), envMap(nil))
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(s, "  -"+f.Name+" ") && !strings.Contains(s, "  -"+f.Name+"\n") {
			t.Errorf("flag -%s missing from help", f.Name)
		}
	})
	if err := run([]string{"-help"}, envMap(nil), &out, &out); err != nil {
		t.Fatalf("run -help = %v", err)
	}
}

// FuzzParseConfig drives the whole configuration path: command line,
// environment and a config file (written to disk and named by -config when
// non-empty). It returns a valid config or a prefixed error, never panics.
func FuzzParseConfig(f *testing.F) {
	f.Add("-listen\x00127.0.0.1:0", "DUALGATE_SNIFF_TIMEOUT=1s", "")
	f.Add("-trusted-proxies\x0010.0.0.0/8,::1", "DUALGATE_MAX_CONNS=-1", "max-conns = 5\n")
	f.Add("-log-level=warn\x00-log-format=json", "DUALGATE_IP_CACHE_SIZE=abc", "")
	f.Add("-help", "", "")
	f.Add("--max-sniffing\x00-5", "DUALGATE_LISTEN=:x", "listen = 1")
	f.Add("-route\x00/a=tcp://127.0.0.1:1", "DUALGATE_ROUTE=/b=builtin:echo /c=builtin:echo", "route = [\"/d=builtin:echo\"]\nlegacy = true\n")
	f.Add("-tls=acme", "DUALGATE_ACME_DOMAINS=a.example,b.example", "acme-disable-http01 = true\n")
	f.Fuzz(func(t *testing.T, args, env, file string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		m := map[string]string{}
		for kv := range strings.SplitSeq(env, "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "DUALGATE_CONFIG" {
				m[k] = v
			}
		}
		for i, a := range argv {
			if strings.Contains(a, "config") { // only the fuzzer's own file
				argv[i] = "-x"
			}
		}
		if file != "" {
			argv = append([]string{"-config", writeFile(t, "c.toml", file)}, argv...)
		}
		c, err := parseConfig(argv, envMap(m), &bytes.Buffer{})
		if err != nil {
			if !errors.Is(err, flag.ErrHelp) && !strings.HasPrefix(err.Error(), "gateway: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		// Whatever parsed also validated.
		if c.SniffTimeout <= 0 || c.IPCacheSize <= 0 || c.MaxSniffing <= 0 || c.MaxConns == 0 || c.MaxConns < -1 ||
			(c.LogFormat != "text" && c.LogFormat != "json") || c.DataDir == "" || c.routes == nil || c.routes.Len() == 0 ||
			c.Window < 16<<10 || c.DrainTimeout <= 0 || c.StreamRoute == "" {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewFlags(t *testing.T) {
	c, err := parseConfig([]string{"-route", "/a=tcp://127.0.0.1:1", "-route=/b=unix:///tmp/s?proxy=v2", "-stream-route=/b",
		"-origin", "a.example.com,*.b.example.com", "-origin", "c.example.com", "-legacy", "-legacy-route", "/a", "-legacy-ws-path", "/snet",
		"-window=65536", "-drain-timeout=5s", "-tls=off"}, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeList(c.routes); !slices.Equal(got, []string{"/a=tcp://127.0.0.1:1", "/b=unix:///tmp/s?proxy=v2"}) {
		t.Errorf("routes %q (the default must be replaced, not extended)", got)
	}
	if !slices.Equal(c.Origins.vals, []string{"a.example.com", "*.b.example.com", "c.example.com"}) {
		t.Errorf("origins %q", c.Origins.vals)
	}
	if !c.Legacy || !c.LegacyEncrypt || c.LegacyWSPath != "/snet" || c.Window != 65536 || c.DrainTimeout != 5*time.Second || c.tlsMode != certs.ModeOff {
		t.Errorf("config %+v", c)
	}
	d, err := parseConfig(nil, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeList(d.routes); !slices.Equal(got, []string{wsbridge.DefaultRouteSpec}) || d.Legacy || d.tlsMode != certs.ModeDev {
		t.Errorf("defaults: routes %q legacy %v tls %v", got, d.Legacy, d.tlsMode)
	}
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-route", "stream=tcp://x:1"}, "-route"},
		{[]string{"-route", "/healthz=builtin:echo"}, "serves itself"},
		{[]string{"-stream-route", "/nope"}, "-stream-route"},
		{[]string{"-legacy", "-legacy-route", "/nope"}, "-legacy-route"},
		{[]string{"-legacy-ws-path", "/stream"}, "also a -route path"},
		{[]string{"-tls", "magic"}, "-tls: must be dev, files, acme or off"},
		{[]string{"-tls", "files"}, "needs -cert and -key"},
		{[]string{"-tls", "acme"}, "-acme-domains"},
		{[]string{"-tls", "acme", "-acme-domains", "a.example", "-acme-disable-http01", "-acme-disable-tlsalpn01"}, "both ACME challenges"},
		{[]string{"-window", "100"}, "-window"},
		{[]string{"-bridge-buffer", "1024"}, "-bridge-buffer"},
		{[]string{"-bridge-buffer", "8388608"}, "-bridge-buffer"},
		{[]string{"-dead-timeout=1s", "-ping-interval=2s"}, "-dead-timeout"},
		{[]string{"-drain-timeout=0s"}, "-drain-timeout"},
	} {
		_, err := parseConfig(tt.args, envMap(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestConfigFile checks the TOML file: keys are flag names, arrays for
// repeatable flags, and the precedence flag > environment > file > default.
func TestConfigFile(t *testing.T) {
	path := writeFile(t, "gateway.toml", `
# Dualgate
listen = "127.0.0.1:9443"
route = ["/a=tcp://127.0.0.1:9000", "/stream=builtin:echo"]
origin = "app.example.com"
max-conns = 5000
legacy = true
legacy-route = "/a"
drain-timeout = "45s"
sniff-timeout = "7s"
trusted-proxies = ["10.0.0.0/8", "192.0.2.7"]
log-level = "warn"
window = 131072
`)
	c, err := parseConfig([]string{"-config", path, "-sniff-timeout=2s"}, envMap(map[string]string{"DUALGATE_MAX_CONNS": "77"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9443" || c.MaxConns != 77 || !c.Legacy || c.DrainTimeout != 45*time.Second || c.SniffTimeout != 2*time.Second ||
		c.LogLevel != slog.LevelWarn || c.Window != 131072 || len(c.TrustedProxies) != 2 || c.Origins.vals[0] != "app.example.com" {
		t.Errorf("config %+v", c)
	}
	if got := routeList(c.routes); !slices.Equal(got, []string{"/a=tcp://127.0.0.1:9000", "/stream=builtin:echo"}) {
		t.Errorf("routes %q", got)
	}
	// The environment's routes win over the file's, the flag's over both.
	c, err = parseConfig([]string{"-config", path}, envMap(map[string]string{"DUALGATE_ROUTE": "/a=tcp://127.0.0.1:1 /b=builtin:echo", "DUALGATE_STREAM_ROUTE": "/b"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeList(c.routes); !slices.Equal(got, []string{"/a=tcp://127.0.0.1:1", "/b=builtin:echo"}) {
		t.Errorf("env routes %q", got)
	}
	c, err = parseConfig([]string{"-route", "/stream=builtin:echo", "-legacy=false"}, envMap(map[string]string{"DUALGATE_CONFIG": path, "DUALGATE_ROUTE": "/x=builtin:echo"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeList(c.routes); !slices.Equal(got, []string{"/stream=builtin:echo"}) || c.Legacy || c.Listen != "127.0.0.1:9443" {
		t.Errorf("flag routes %q legacy %v listen %s", got, c.Legacy, c.Listen)
	}

	for _, tt := range []struct{ name, file, wantErr string }{
		{"unknown key", `lisen = ":1"`, `key "lisen": unknown key`},
		{"nested config", `config = "x.toml"`, `key "config": unknown key`},
		{"table", "[listen]\nx = 1", `key "listen": want a string, got a table`},
		{"int for string", `listen = 8443`, `key "listen": want a string, got an integer`},
		{"string for int", `max-conns = "many"`, `key "max-conns": want an integer, got a string`},
		{"int for duration", `drain-timeout = 30`, `key "drain-timeout": want a duration string`},
		{"bad duration", `drain-timeout = "soon"`, `key "drain-timeout": invalid value`},
		{"string for bool", `legacy = "yes"`, `key "legacy": want true or false, got a string`},
		{"number array", `route = [1, 2]`, `key "route": want a string or an array of strings, got an array`},
		{"float for int", `window = 1.5`, `key "window": want an integer, got a float`},
		{"syntax", `listen = `, "toml:"},
		{"invalid value", `window = 5`, "-window"},
		{"bad route", `route = ["nope"]`, "-route"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]string{"-config", writeFile(t, "c.toml", tt.file)}, envMap(nil), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "gateway: ") {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := parseConfig([]string{"-config", filepath.Join(t.TempDir(), "missing.toml")}, envMap(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-config") {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzConfigFile feeds arbitrary TOML to the config file parser: it
// returns a config that validated or a prefixed error, never panics.
func FuzzConfigFile(f *testing.F) {
	f.Add("listen = \"127.0.0.1:0\"\nroute = [\"/a=tcp://127.0.0.1:9\"]\n")
	f.Add("max-conns = -1\nlegacy = true\n")
	f.Add("drain-timeout = \"1s\"\ntrusted-proxies = \"10.0.0.0/8\"\n")
	f.Add("[x]\ny = 1\n")
	f.Add("window = 9223372036854775807\n")
	f.Add("log-level = \"debug\"\norigin = [\"a\", \"b\"]\ntls = \"off\"\n")
	f.Add("route = []\n")
	f.Fuzz(func(t *testing.T, file string) {
		fs := newFlagSet(new(config), envMap(nil))
		err := applyConfigTOML(fs, []byte(file), map[string]bool{})
		if err != nil {
			return
		}
		// Whatever the file set, validation decides without panicking.
		var c config
		fs = newFlagSet(&c, envMap(nil))
		if err := applyConfigTOML(fs, []byte(file), map[string]bool{}); err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		if err := c.validate(); err == nil && (c.routes == nil || c.Window < 16<<10 || c.DrainTimeout <= 0) {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}

func TestChangedKeys(t *testing.T) {
	a, err := parseConfig([]string{"-route", "/a=builtin:echo", "-max-conns=5"}, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseConfig([]string{"-route", "/b=builtin:echo", "-max-conns=6", "-origin=x.example"}, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Routes reload; the limit, the origins and the derived stream route
	// need a restart.
	if got := a.changedKeys(b); !slices.Equal(got, []string{"legacy-route", "max-conns", "origin", "stream-route"}) {
		t.Fatalf("changed %q", got)
	}
}
