package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scenarios lists the subcommands in the order of the usage text.
var scenarios = []string{"throughput", "sessions", "idle", "resume", "chaos"}

// config holds the flags of one run. Zero values are replaced by the
// scenario's defaults in parseArgs.
type config struct {
	scenario string

	// Target.
	gateway      string   // -gateway: package dir to build, or an executable
	gatewayFlags []string // -gateway-flag, passed through
	addr         string   // -addr: a running gateway instead
	pid          int      // -pid of the running gateway (for CPU and RSS)
	routeSink    string   // path routed to the sink upstream
	routeEcho    string   // path routed to the echo upstream
	routeBuiltin string   // path routed to the gateway's builtin:echo
	sinkListen   string   // address of dualbench's sink upstream
	echoListen   string   // address of dualbench's echo upstream
	caFile       string   // CA of the gateway's wss certificate ("" = the dev CA in the data dir)
	serverKey    string   // pinned key (NK); "" = NN
	pin          bool     // with -gateway: pin the started gateway's key (NK)
	alwaysSeal   bool     // the client seals every frame even inside TLS
	suite        string   // aes | chacha

	// Load.
	duration   time.Duration
	warmup     time.Duration
	conns      int
	sizes      []int
	transports []string
	upstream   string // sink | echo
	rounds     int
	sessions   int
	sources    int
	settle     time.Duration
	killEvery  time.Duration
	stall      time.Duration // resume, chaos: drop the gateway's bytes this long before a kill
	rate       int           // resume: bytes per second per session (0: unpaced)
	seed       uint64
	baselines  bool
	systems    []string // throughput: which of gateway, ws-bridge, tcp-proxy
	timeout    time.Duration

	// Output.
	json       bool
	quiet      bool
	cpuprofile string

	// Not a flag: dualbench's own GOGC, set by run (generatorGC).
	gogc string
}

// defaults returns the defaults of a scenario.
func defaults(scenario string) config {
	c := config{
		scenario:     scenario,
		routeSink:    "/bench-sink",
		routeEcho:    "/bench-echo",
		routeBuiltin: "/bench-builtin",
		sinkListen:   "127.0.0.1:0",
		echoListen:   "127.0.0.1:0",
		suite:        "aes",
		duration:     5 * time.Second,
		warmup:       time.Second,
		conns:        4,
		sizes:        []int{32 << 10},
		transports:   []string{"ws", "wss"},
		upstream:     "sink",
		systems:      []string{"gateway", "ws-bridge", "tcp-proxy"},
		rounds:       1,
		sources:      200,
		settle:       3 * time.Second,
		killEvery:    50 * time.Millisecond,
		stall:        10 * time.Millisecond,
		seed:         1,
	}
	switch scenario {
	case "sessions":
		c.conns = 16
		c.transports = []string{"ws"}
		c.upstream = "echo"
	case "idle":
		c.conns = 64
		c.sessions = 20000
		c.transports = []string{"ws"}
		c.upstream = "echo"
	case "resume":
		c.sessions = 8
		c.duration = 10 * time.Second
		c.transports = []string{"ws"}
		c.upstream = "echo"
		c.sizes = []int{4 << 10}
		c.rate = 4 << 20
	case "chaos":
		c.sessions = 4
		c.duration = 20 * time.Second
		c.transports = []string{"ws"}
		c.sizes = []int{16 << 10}
		c.killEvery = 200 * time.Millisecond
	}
	c.timeout = c.duration*20 + 2*time.Minute
	return c
}

// parseArgs parses the command line (without the program name). It returns
// flag.ErrHelp for -h.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	if len(args) == 0 {
		usage(stderr)
		return config{}, errors.New("dualbench: no scenario given")
	}
	name := args[0]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		usage(stderr)
		return config{}, flag.ErrHelp
	}
	if !slices.Contains(scenarios, name) {
		usage(stderr)
		return config{}, fmt.Errorf("dualbench: unknown scenario %q", name)
	}
	c := defaults(name)
	fs := flag.NewFlagSet("dualbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeoutSet := false
	fs.StringVar(&c.gateway, "gateway", c.gateway, "build (package `dir`, e.g. ./cmd/gateway) or run (executable) the gateway on a free loopback port")
	fs.Func("gateway-flag", "extra `flag` for the started gateway (repeatable), e.g. -gateway-flag=-max-sessions-per-ip=100000", func(s string) error {
		c.gatewayFlags = append(c.gatewayFlags, s)
		return nil
	})
	fs.StringVar(&c.addr, "addr", c.addr, "`host:port` of a running gateway (instead of -gateway)")
	fs.IntVar(&c.pid, "pid", c.pid, "process id of the running gateway given by -addr, for CPU time and RSS")
	fs.StringVar(&c.routeSink, "route-sink", c.routeSink, "route `path` of the sink upstream")
	fs.StringVar(&c.routeEcho, "route-echo", c.routeEcho, "route `path` of the echo upstream")
	fs.StringVar(&c.routeBuiltin, "route-builtin", c.routeBuiltin, "route `path` of the gateway's builtin:echo upstream")
	fs.StringVar(&c.sinkListen, "sink-listen", c.sinkListen, "listen `address` of the sink upstream (fix it when using -addr)")
	fs.StringVar(&c.echoListen, "echo-listen", c.echoListen, "listen `address` of the echo upstream (fix it when using -addr)")
	fs.StringVar(&c.caFile, "ca", c.caFile, "PEM `file` of the CA of the gateway's wss certificate (default: the dev CA in the data directory)")
	fs.StringVar(&c.serverKey, "server-key", c.serverKey, "pin this gateway `key` (base64url) and use the NK pattern; default NN")
	fs.BoolVar(&c.pin, "pin", c.pin, "with -gateway: pin the started gateway's key from its data directory (NK pattern)")
	fs.StringVar(&c.suite, "suite", c.suite, "cipher `suite` the client proposes: aes or chacha")
	fs.BoolVar(&c.alwaysSeal, "always-seal", c.alwaysSeal, "seal every frame with the session AEAD over wss too (default: an NN client offers plain-in-TLS frames, docs/protocol.md §5.7)")
	fs.DurationVar(&c.duration, "duration", c.duration, "measuring window (throughput, per run), run length (sessions, resume, chaos)")
	fs.DurationVar(&c.warmup, "warmup", c.warmup, "unmeasured warm-up before each measuring window")
	fs.IntVar(&c.conns, "conns", c.conns, "concurrent streams (throughput) or workers (sessions, idle)")
	fs.Func("size", "message `sizes`, comma-separated, 64 B to 64 KiB, e.g. 64,1k,16k,32k,64k (default "+formatSizes(c.sizes)+")", func(s string) error {
		v, err := parseSizes(s)
		c.sizes = v
		return err
	})
	fs.Func("transport", "`list` of transports: ws, wss or ws,wss (default "+strings.Join(c.transports, ",")+")", func(s string) error {
		v, err := parseTransports(s)
		c.transports = v
		return err
	})
	fs.StringVar(&c.upstream, "upstream", c.upstream, "upstream `kind`: sink (a discarding TCP sink), echo (a TCP echo server) or builtin (the gateway's builtin:echo; sessions and idle only)")
	fs.Func("systems", "throughput: `list` of systems to measure: gateway, ws-bridge, tcp-proxy (default all; ratios need all)", func(s string) error {
		var out []string
		for f := range strings.SplitSeq(s, ",") {
			f = strings.TrimSpace(f)
			if f != "gateway" && f != "ws-bridge" && f != "tcp-proxy" {
				return fmt.Errorf("dualbench: unknown system %q", f)
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
		c.systems = out
		return nil
	})
	fs.IntVar(&c.rounds, "rounds", c.rounds, "throughput: repeat every measurement this many times, interleaved, and report medians")
	fs.IntVar(&c.sessions, "sessions", c.sessions, "idle: sessions to open; resume, chaos: live sessions")
	fs.IntVar(&c.sources, "sources", c.sources, "spread client source addresses over this many addresses 127.0.0.2 …")
	fs.DurationVar(&c.settle, "settle", c.settle, "idle: wait this long after opening before reading RSS")
	fs.DurationVar(&c.killEvery, "kill-every", c.killEvery, "resume: kill one transport this often; chaos: mean interval between random drops")
	fs.DurationVar(&c.stall, "stall", c.stall, "resume: before each kill, drop what the gateway sends for this long, so the first DATA after the resume is a retransmission; chaos: the mean of random such stalls (0: plain kills)")
	fs.IntVar(&c.rate, "rate", c.rate, "resume: bytes per second each session writes (0: as fast as it can)")
	fs.Uint64Var(&c.seed, "seed", c.seed, "seed of the chaos schedule and data")
	fs.BoolVar(&c.baselines, "baselines", c.baselines, "sessions, idle: also measure the two baselines")
	fs.Func("timeout", "hard bound of the whole run (default: generous for the scenario and its flags)", func(s string) error {
		d, err := time.ParseDuration(s)
		c.timeout, timeoutSet = d, true
		return err
	})
	fs.BoolVar(&c.json, "json", c.json, "print the result as JSON on stdout")
	fs.BoolVar(&c.quiet, "q", c.quiet, "no progress output on stderr")
	fs.StringVar(&c.cpuprofile, "cpuprofile", c.cpuprofile, "write a CPU profile of dualbench itself (the client side) to `file`")
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("dualbench: unexpected arguments %q", fs.Args())
	}
	if !timeoutSet {
		c.timeout = c.defaultTimeout()
	}
	return c, c.validate()
}

// defaultTimeout bounds a run generously: throughput makes one measurement
// per round, size, transport and system (each a warm-up, a window and up to
// half a minute of set-up and quiescing); idle opens sessions at a few
// hundred per second on a loaded machine; the others run for -duration.
func (c *config) defaultTimeout() time.Duration {
	switch c.scenario {
	case "throughput":
		runs := c.rounds * len(c.sizes) * (1 + 2*len(c.transports))
		return time.Duration(runs)*(c.warmup+c.duration+30*time.Second) + 2*time.Minute
	case "idle":
		return time.Duration(c.sessions)*10*time.Millisecond + 2*c.settle + 5*time.Minute
	}
	return c.duration*20 + 2*time.Minute
}

// validate checks the combination of flags.
func (c *config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("dualbench: "+format, a...)) }
	switch {
	case c.gateway == "" && c.addr == "":
		bad("need -gateway PATH (build or run the gateway) or -addr HOST:PORT (a running one)")
	case c.gateway != "" && c.addr != "":
		bad("-gateway and -addr exclude each other")
	}
	if c.pin && c.gateway == "" {
		bad("-pin needs -gateway (with -addr give -server-key)")
	}
	if c.duration <= 0 || c.warmup < 0 || c.timeout <= 0 || c.settle < 0 {
		bad("durations must be positive")
	}
	if c.conns < 1 || c.conns > 100000 {
		bad("-conns %d out of range 1..100000", c.conns)
	}
	if c.rounds < 1 || c.rounds > 100 {
		bad("-rounds %d out of range 1..100", c.rounds)
	}
	if c.sources < 1 || c.sources > 250 {
		bad("-sources %d out of range 1..250", c.sources)
	}
	switch {
	case c.upstream != "sink" && c.upstream != "echo" && c.upstream != "builtin":
		bad("-upstream %q: want sink, echo or builtin", c.upstream)
	case c.upstream == "builtin" && c.scenario != "sessions" && c.scenario != "idle":
		bad("-upstream builtin is for sessions and idle (the baselines have no builtin echo)")
	case c.upstream == "sink" && c.scenario == "sessions":
		bad("sessions needs an echoing upstream: -upstream echo or builtin")
	}
	if c.suite != "aes" && c.suite != "chacha" {
		bad("-suite %q: want aes or chacha", c.suite)
	}
	if len(c.sizes) == 0 || len(c.transports) == 0 {
		bad("need at least one size and one transport")
	}
	switch c.scenario {
	case "idle", "resume", "chaos":
		if c.sessions < 1 || c.sessions > 1000000 {
			bad("-sessions %d out of range 1..1000000", c.sessions)
		}
	}
	if (c.scenario == "resume" || c.scenario == "chaos") && slices.Contains(c.transports, "wss") {
		bad("%s runs over ws only: its fault proxy reads WebSocket frame lengths", c.scenario)
	}
	if c.rate < 0 {
		bad("-rate must not be negative")
	}
	if c.stall < 0 || c.scenario == "resume" && c.stall >= c.killEvery {
		bad("-stall must be at least 0 and shorter than -kill-every")
	}
	if c.killEvery <= 0 {
		bad("-kill-every must be positive")
	}
	return errors.Join(errs...)
}

// parseSizes parses a comma-separated list of sizes with optional k/K/KiB
// suffixes (1024). Each size must lie between 1 byte and 1 MiB.
func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		for _, suf := range []string{"KiB", "kib", "k", "K"} {
			if v, ok := strings.CutSuffix(f, suf); ok {
				f, mult = v, 1024
				break
			}
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > (1<<20)/mult {
			return nil, fmt.Errorf("dualbench: bad size %q (want 1 B to 1 MiB, e.g. 64, 1k, 32KiB)", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// formatSize writes a size as parseSizes reads it.
func formatSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + "k"
	}
	return strconv.Itoa(n)
}

// formatSizes writes a list of sizes as parseSizes reads it.
func formatSizes(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = formatSize(n)
	}
	return strings.Join(s, ",")
}

// parseTransports parses a comma-separated list of ws and wss.
func parseTransports(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f != "ws" && f != "wss" {
			return nil, fmt.Errorf("dualbench: bad transport %q (want ws or wss)", f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// usage prints the scenario list.
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: dualbench SCENARIO [flags]   (dualbench SCENARIO -h lists the flags)

scenarios:
  throughput  MB/s and server CPU s/GB, gateway vs bare TCP proxy vs plain WebSocket bridge
  sessions    new resumable sessions per second and their latency
  idle        gateway RSS per idle resumable session (default 20,000 sessions)
  resume      dial-to-first-replayed-byte latency after transport kills, bytes replayed
  chaos       byte-verified soak with random transport drops (exit 1 on any mismatch)

examples:
  dualbench throughput -gateway ./cmd/gateway -size 64,1k,16k,32k,64k -json
  dualbench idle -gateway ./cmd/gateway -sessions 20000
  dualbench chaos -addr 127.0.0.1:8443 -sink-listen 127.0.0.1:9001 -echo-listen 127.0.0.1:9002
`)
}
