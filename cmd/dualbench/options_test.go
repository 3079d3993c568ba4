package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"64", []int{64}, true},
		{"64,1k,16K,32KiB,64k", []int{64, 1024, 16384, 32768, 65536}, true},
		{" 1 , 2 ", []int{1, 2}, true},
		{"1024k", []int{1 << 20}, true},
		{"1025k", nil, false},
		{"0", nil, false},
		{"-1", nil, false},
		{"", nil, false},
		{"64,", nil, false},
		{"1M", nil, false},
		{"k", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSizes(tt.in)
			if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
				t.Fatalf("parseSizes(%q) = %v, %v", tt.in, got, err)
			}
			if tt.ok {
				back, err := parseSizes(formatSizes(got))
				if err != nil || !slices.Equal(back, got) {
					t.Fatalf("round trip of %v via %q: %v, %v", got, formatSizes(got), back, err)
				}
			}
		})
	}
}

func TestParseTransports(t *testing.T) {
	if got, err := parseTransports("ws,wss,ws"); err != nil || !slices.Equal(got, []string{"ws", "wss"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "http", "ws,tcp", "WSS"} {
		if _, err := parseTransports(bad); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

func TestParseArgsDefaults(t *testing.T) {
	for _, sc := range scenarios {
		c, err := parseArgs([]string{sc, "-gateway", "./cmd/gateway"}, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		if c.scenario != sc || c.gateway != "./cmd/gateway" || c.timeout <= c.duration {
			t.Fatalf("%s: %+v", sc, c)
		}
	}
	c, _ := parseArgs([]string{"idle", "-addr", "127.0.0.1:1"}, io.Discard)
	if c.sessions != 20000 || c.upstream != "echo" {
		t.Fatalf("idle defaults: %+v", c)
	}
	c, _ = parseArgs([]string{"throughput", "-addr", "127.0.0.1:1"}, io.Discard)
	if !slices.Equal(c.sizes, []int{32 << 10}) || !slices.Equal(c.transports, []string{"ws", "wss"}) {
		t.Fatalf("throughput defaults: %+v", c)
	}
}

func TestParseArgsFlags(t *testing.T) {
	c, err := parseArgs([]string{"throughput", "-addr", "127.0.0.1:8443", "-pid", "7", "-size", "64,64k",
		"-transport", "wss", "-duration", "2s", "-conns", "8", "-json", "-gateway-flag=-a", "-gateway-flag", "-b=1",
		"-upstream", "echo", "-rounds", "3", "-suite", "chacha"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr != "127.0.0.1:8443" || c.pid != 7 || !slices.Equal(c.sizes, []int{64, 65536}) ||
		!slices.Equal(c.transports, []string{"wss"}) || c.duration != 2*time.Second || c.conns != 8 || !c.json ||
		!slices.Equal(c.gatewayFlags, []string{"-a", "-b=1"}) || c.upstream != "echo" || c.rounds != 3 ||
		c.suite != "chacha" || c.timeout != 3*2*(1+2)*(time.Second+2*time.Second+30*time.Second)+2*time.Minute {
		t.Fatalf("parsed %+v", c)
	}
	c, err = parseArgs([]string{"sessions", "-addr", "x:1", "-timeout", "7s"}, io.Discard)
	if err != nil || c.timeout != 7*time.Second {
		t.Fatalf("timeout: %v %v", c.timeout, err)
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no scenario"},
		{[]string{"bogus"}, "unknown scenario"},
		{[]string{"throughput"}, "need -gateway"},
		{[]string{"throughput", "-gateway", "g", "-addr", "a:1"}, "exclude each other"},
		{[]string{"throughput", "-addr", "a:1", "-size", "0"}, "bad size"},
		{[]string{"throughput", "-addr", "a:1", "-transport", "h2"}, "bad transport"},
		{[]string{"throughput", "-addr", "a:1", "-conns", "0"}, "-conns"},
		{[]string{"throughput", "-addr", "a:1", "-upstream", "x"}, "-upstream"},
		{[]string{"throughput", "-addr", "a:1", "-suite", "des"}, "-suite"},
		{[]string{"throughput", "-addr", "a:1", "-duration", "0s"}, "positive"},
		{[]string{"throughput", "-addr", "a:1", "-sources", "251"}, "-sources"},
		{[]string{"chaos", "-addr", "a:1", "-transport", "wss"}, "ws only"},
		{[]string{"idle", "-addr", "a:1", "-sessions", "0"}, "-sessions"},
		{[]string{"resume", "-addr", "a:1", "-rate", "-1"}, "-rate"},
		{[]string{"resume", "-addr", "a:1", "-stall", "50ms"}, "-stall"},
		{[]string{"chaos", "-addr", "a:1", "-stall", "-1ms"}, "-stall"},
		{[]string{"throughput", "-addr", "a:1", "extra"}, "unexpected"},
		{[]string{"throughput", "-nosuchflag"}, "not defined"},
		{[]string{"throughput", "-addr", "a:1", "-systems", "gateway,nginx"}, "unknown system"},
		{[]string{"sessions", "-addr", "a:1", "-pin"}, "-pin needs -gateway"},
	}
	for _, tt := range tests {
		_, err := parseArgs(tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseArgs(%q) = %v, want error containing %q", tt.args, err, tt.want)
		}
	}
	if _, err := parseArgs([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestRunUsageExitCodes(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"nope"}, strings.NewReader(""), &out, &errOut); code != 2 {
		t.Fatalf("bad scenario: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "usage: dualbench") {
		t.Fatalf("no usage: %q", errOut.String())
	}
	if code := run([]string{"help"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
}

func FuzzParseSizes(f *testing.F) {
	f.Add("64,1k,16KiB")
	f.Add("1024k")
	f.Add(",,,")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSizes(s)
		if err != nil {
			return
		}
		for _, n := range got {
			if n < 1 || n > 1<<20 {
				t.Fatalf("parseSizes(%q) gave %d", s, n)
			}
		}
		back, err := parseSizes(formatSizes(got))
		if err != nil || !slices.Equal(back, got) {
			t.Fatalf("round trip of %v: %v %v", got, back, err)
		}
	})
}

func TestGatewayFlagNamesAndLimits(t *testing.T) {
	usage := "Usage: gateway [flags]\n\nListening:\n  -listen ADDR\n      ADDR of the port\n  -max-conns int\n      most open connections\n" +
		"\t-max-sessions=100\n  -route /path=upstream\nnot-a-flag -x\n"
	names := parseFlagNames(usage)
	for _, n := range []string{"listen", "max-conns", "max-sessions", "route"} {
		if !names[n] {
			t.Errorf("flag %s not found in %v", n, names)
		}
	}
	if names["x"] || names["ADDR"] {
		t.Errorf("found a flag that is not one: %v", names)
	}
	got := liftLimits(names, []string{"-max-sessions=5"}, 20000)
	if !slices.Equal(got, []string{"-max-conns=50000"}) {
		t.Fatalf("liftLimits = %v", got)
	}
	if got := liftLimits(map[string]bool{}, nil, 10); len(got) != 0 {
		t.Fatalf("liftLimits without support = %v", got)
	}
}
