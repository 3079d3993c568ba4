package main

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

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
	for _, want := range []string{"Listening:", "Sniffing and limits:", "Logging:", "-listen ADDR", `default ":8443"`,
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

func FuzzParseConfig(f *testing.F) {
	f.Add("-listen\x00127.0.0.1:0", "DUALGATE_SNIFF_TIMEOUT=1s")
	f.Add("-trusted-proxies\x0010.0.0.0/8,::1", "DUALGATE_MAX_CONNS=-1")
	f.Add("-log-level=warn\x00-log-format=json", "DUALGATE_IP_CACHE_SIZE=abc")
	f.Add("-help", "")
	f.Add("--max-sniffing\x00-5", "DUALGATE_LISTEN=:x")
	f.Fuzz(func(t *testing.T, args, env string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		m := map[string]string{}
		for kv := range strings.SplitSeq(env, "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
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
			(c.LogFormat != "text" && c.LogFormat != "json") || c.DataDir == "" {
			t.Fatalf("invalid config accepted: %+v", c)
		}
	})
}
