package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is dualbench without the process around it; it returns the exit
// status: 0 success, 1 a failed check (chaos) or error, 2 bad usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "baseline-server" {
		if err := baselineServerMain(args[1:], stdin, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if len(args) > 0 && args[0] == "idle-worker" {
		if err := idleWorkerMain(args[1:], stdin, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var restoreGC func()
	cfg.gogc, restoreGC = generatorGC()
	defer restoreGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rep, err := execute(ctx, &cfg, stderr)
	if rep != nil {
		if cfg.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				fmt.Fprintln(stderr, jerr)
				return 1
			}
		} else {
			printReport(stdout, rep)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if len(rep.Failures) > 0 {
		for _, f := range rep.Failures {
			fmt.Fprintln(stderr, "FAIL:", f)
		}
		return 1
	}
	return 0
}

// generatorGCPercent is dualbench's own GOGC in a scenario run. The load
// generator allocates for every session and message, and every cycle its
// collector spends is one the gateway, on the same cores, does not get (in
// sessions, with the upstream buffers pooled: ≈3 % of dualbench's CPU at
// Go's default of 100, ≈1 % at 400). The generator's heap is small, so four
// times the live heap costs little memory. The
// baseline-server child keeps the default (its CPU is measured, like the
// gateway's, which runs with the default too), and so do the idle-worker
// children: they mostly hold sessions, and a larger heap in five processes
// would only add memory pressure while the gateway's RSS is measured.
const generatorGCPercent = 400

// generatorGC sets dualbench's GC percent to generatorGCPercent unless the
// GOGC environment variable is set (the runtime has then applied it). It
// changes no environment variable, so a gateway or child that dualbench
// starts is unaffected. It returns the GOGC in effect, for the report, and
// a function that restores the previous setting.
func generatorGC() (string, func()) {
	if v := os.Getenv("GOGC"); v != "" {
		return v, func() {}
	}
	prev := debug.SetGCPercent(generatorGCPercent)
	return strconv.Itoa(generatorGCPercent), func() { debug.SetGCPercent(prev) }
}

// report is the JSON result of every scenario.
type report struct {
	Scenario string    `json:"scenario"`
	Date     string    `json:"date"`
	Host     hostInfo  `json:"host"`
	Gateway  gwInfo    `json:"gateway"`
	Config   cfgInfo   `json:"config"`
	Result   any       `json:"result"`
	Notes    []string  `json:"notes,omitempty"`
	Failures []string  `json:"failures,omitempty"`
	Elapsed  float64   `json:"elapsed_s"`
	started  time.Time `json:"-"`
}

type hostInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	AES       bool   `json:"aes"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	Load1     string `json:"load1_at_start"`
}

type gwInfo struct {
	Addr  string `json:"addr"`
	PID   int    `json:"pid"`
	Start string `json:"started_by_dualbench,omitempty"`
}

type cfgInfo struct {
	Duration   string   `json:"duration"`
	Warmup     string   `json:"warmup"`
	Conns      int      `json:"conns"`
	Sizes      []int    `json:"sizes"`
	Transports []string `json:"transports"`
	Upstream   string   `json:"upstream"`
	Rounds     int      `json:"rounds"`
	Sessions   int      `json:"sessions,omitempty"`
	Sources    int      `json:"sources"`
	Suite      string   `json:"suite"`
	Pattern    string   `json:"pattern"`
	AlwaysSeal bool     `json:"always_seal,omitempty"`
	Seed       uint64   `json:"seed"`
	KillEvery  string   `json:"kill_every,omitempty"`
	Stall      string   `json:"stall,omitempty"`
	Rate       int      `json:"rate,omitempty"`
	Flags      []string `json:"gateway_flags,omitempty"`
	// ClientGOGC is dualbench's own GOGC (generatorGC), not the gateway's.
	ClientGOGC string `json:"client_gogc"`
}

// execute runs the scenario of cfg.
func execute(ctx context.Context, cfg *config, stderr io.Writer) (rep *report, err error) {
	log := stderr
	if cfg.quiet {
		log = io.Discard
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return nil, fmt.Errorf("dualbench: -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, fmt.Errorf("dualbench: -cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if lim, err := raiseFileLimit(1 << 20); err != nil {
		fmt.Fprintf(log, "dualbench: cannot raise RLIMIT_NOFILE: %v\n", err)
	} else if cfg.scenario == "idle" && lim < uint64(cfg.sessions)*3+1000 {
		fmt.Fprintf(log, "dualbench: RLIMIT_NOFILE is %d; %d idle sessions need about %d descriptors\n", lim, cfg.sessions, cfg.sessions*3+1000)
	}
	rep = &report{Scenario: cfg.scenario, started: time.Now(), Host: readHostInfo(), Config: cfgInfo{
		Duration: cfg.duration.String(), Warmup: cfg.warmup.String(), Conns: cfg.conns, Sizes: cfg.sizes,
		Transports: cfg.transports, Upstream: cfg.upstream, Rounds: cfg.rounds, Sessions: cfg.sessions,
		Sources: cfg.sources, Suite: cfg.suite, Pattern: "NN", Seed: cfg.seed, Flags: cfg.gatewayFlags,
		Rate: cfg.rate, AlwaysSeal: cfg.alwaysSeal, ClientGOGC: cfg.gogc,
	}}
	rep.Date = rep.started.UTC().Format(time.RFC3339)
	if cfg.scenario == "resume" || cfg.scenario == "chaos" {
		rep.Config.KillEvery = cfg.killEvery.String()
		rep.Config.Stall = cfg.stall.String()
	}
	if cfg.serverKey != "" || cfg.pin {
		rep.Config.Pattern = "NK"
	}
	b, err := newBench(ctx, cfg, log, cfg.scenario == "chaos")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := b.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		rep.Elapsed = round3(time.Since(rep.started).Seconds())
	}()
	rep.Gateway = gwInfo{Addr: b.gwAddr, PID: b.gwPID}
	rep.Config.Flags = append(append([]string(nil), b.liftedFlags...), cfg.gatewayFlags...)
	if b.gw != nil {
		rep.Gateway.Start = cfg.gateway
	}
	switch cfg.scenario {
	case "throughput":
		var res *throughputResult
		res, err = runThroughput(ctx, b)
		rep.Result = res
		if res != nil {
			for _, r := range res.Runs {
				if r.Error != "" {
					rep.Failures = append(rep.Failures, fmt.Sprintf("throughput %s/%s size %s round %d: %s", r.System, r.Transport, formatSize(r.Size), r.Round, r.Error))
				}
			}
		}
	case "sessions":
		rep.Result, err = runSessions(ctx, b, rep)
	case "idle":
		rep.Result, err = runIdle(ctx, b, rep)
	case "resume":
		rep.Result, err = runResume(ctx, b, rep)
	case "chaos":
		rep.Result, err = runChaos(ctx, b, rep)
	}
	if b.gw != nil && !b.gw.alive() {
		rep.Failures = append(rep.Failures, "the gateway exited during the run")
	}
	return rep, err
}

// readHostInfo describes the machine for the report.
func readHostInfo() hostInfo {
	h := hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "model name" && h.CPUModel == "" {
				h.CPUModel = v
			}
			if k == "flags" && !h.AES {
				h.AES = strings.Contains(" "+v+" ", " aes ")
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			h.Load1 = f[0]
		}
	}
	return h
}
