package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// sessionsRun is the sessions scenario against one system.
type sessionsRun struct {
	System    string  `json:"system"`
	Transport string  `json:"transport"`
	Workers   int     `json:"workers"`
	Completed int64   `json:"completed"` // sessions that reached the first echo inside the window
	Failed    int64   `json:"failed"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"sessions_per_s"`
	// Dial is the client's Dial (upgrade and handshake); FirstEcho is from the
	// start of Dial to the first byte echoed through the upstream (so it
	// includes the gateway's upstream dial).
	Dial      latencySummary `json:"dial"`
	FirstEcho latencySummary `json:"first_echo"`
	// ServerCPUPerSession is the server's CPU time per completed session, and
	// PerServerCPUSecond its inverse: the rate one fully used core would give.
	ServerCPUPerSession float64 `json:"server_cpu_ms_per_session"`
	PerServerCPUSecond  float64 `json:"sessions_per_server_cpu_s"`
	// ClientCPUPerSession is dualbench's own CPU time per completed session:
	// the clients' side plus the upstream it serves (the echo or sink). On a
	// machine where both run, sessions per second are bounded by the sum.
	ClientCPUPerSession float64        `json:"client_cpu_ms_per_session"`
	Errors              map[string]int `json:"errors,omitempty"`
	Target              string         `json:"target_3000_per_s,omitempty"`
}

// sessionsResult is the JSON result of the sessions scenario.
type sessionsResult struct {
	Runs []sessionsRun `json:"runs"`
}

// targetSessionsPerSecond is issue 8's target for new sessions.
const targetSessionsPerSecond = 3000

// maxErrorKinds bounds the distinct error strings a run keeps.
const maxErrorKinds = 10

// runSessions measures the gateway over each transport. With -baselines,
// each transport adds the ws-bridge, and the run ends with
// the bare TCP proxy once (its transport is "tcp" whatever -transport says):
// connect, one echoed byte and close through a proxy to the same echo
// upstream, the best this machine can do.
func runSessions(ctx context.Context, b *bench, rep *report) (*sessionsResult, error) {
	res := &sessionsResult{}
	var systems []*system
	if b.cfg.baselines {
		if err := b.startBaselines(ctx); err != nil {
			return res, err
		}
	}
	for _, tr := range b.cfg.transports {
		systems = append(systems, b.gatewaySystem(tr))
		if b.cfg.baselines {
			systems = append(systems, b.wsBridge(tr))
		}
	}
	if b.cfg.baselines {
		systems = append(systems, b.tcpProxy())
	}
	for _, sys := range systems {
		r := measureSessions(ctx, b, sys)
		res.Runs = append(res.Runs, r)
		if r.Completed == 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("sessions: %s completed no session (errors %v)", sys.label(), r.Errors))
		}
	}
	return res, ctx.Err()
}

// measureSessions runs cfg.conns workers that each open a session, do one
// echo round trip and close it, over and over.
func measureSessions(ctx context.Context, b *bench, sys *system) sessionsRun {
	cfg := b.cfg
	run := sessionsRun{System: sys.name, Transport: sys.transport, Workers: cfg.conns, Errors: map[string]int{}}
	var (
		dial, echo          latencies
		completed, failed   atomic.Int64
		windowStart, winEnd atomic.Int64 // unix nanos; 0 = not yet
		errMu               sync.Mutex
		wg                  sync.WaitGroup
	)
	addErr := func(err error) {
		failed.Add(1)
		errMu.Lock()
		if len(run.Errors) < maxErrorKinds || run.Errors[err.Error()] > 0 {
			run.Errors[err.Error()]++
		}
		errMu.Unlock()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	one := []byte{0x42}
	up := parseUpstreamKind(cfg.upstream)
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for wctx.Err() == nil {
				t0 := time.Now()
				dctx, dcancel := context.WithTimeout(wctx, streamDialTimeout)
				c, err := sys.dial(dctx, up)
				dcancel()
				if err != nil {
					if wctx.Err() == nil {
						addErr(err)
					}
					continue
				}
				t1 := time.Now()
				c.SetDeadline(time.Now().Add(streamDialTimeout)) //nolint:errcheck // bounds the round trip
				_, err = c.Write(one)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				t2 := time.Now()
				closeConn(c)
				if err != nil {
					if wctx.Err() == nil {
						addErr(fmt.Errorf("echo: %w", err))
					}
					continue
				}
				ws, we := windowStart.Load(), winEnd.Load()
				if ws != 0 && t0.UnixNano() >= ws && (we == 0 || t2.UnixNano() <= we) {
					completed.Add(1)
					dial.add(t1.Sub(t0))
					echo.add(t2.Sub(t0))
				}
			}
		}()
	}
	var last int64
	prog := startProgress(b.log, "sessions "+sys.label(), func() string {
		n := completed.Load()
		s := fmt.Sprintf("%6d sessions/s  (%d in window, %d failed)", n-last, n, failed.Load())
		last = n
		return s
	})
	sleepCtx(ctx, cfg.warmup)
	t0 := time.Now()
	windowStart.Store(t0.UnixNano())
	s0, _ := cpuOf(sys.pid)
	c0, _ := procCPU(os.Getpid())
	sleepCtx(ctx, cfg.duration)
	t1 := time.Now()
	winEnd.Store(t1.UnixNano())
	s1, serr := cpuOf(sys.pid)
	c1, cerr := procCPU(os.Getpid())
	prog.stop()
	cancel()
	wg.Wait()

	run.Completed = completed.Load()
	run.Failed = failed.Load()
	run.Seconds = round3(t1.Sub(t0).Seconds())
	run.PerSecond = round3(float64(run.Completed) / t1.Sub(t0).Seconds())
	run.Dial, run.FirstEcho = dial.summary(), echo.summary()
	if serr == nil && run.Completed > 0 && s1 > s0 {
		cpu := (s1 - s0).Seconds()
		run.ServerCPUPerSession = round3(cpu * 1000 / float64(run.Completed))
		run.PerServerCPUSecond = round3(float64(run.Completed) / cpu)
	}
	if cerr == nil && run.Completed > 0 && c1 > c0 {
		run.ClientCPUPerSession = round3((c1 - c0).Seconds() * 1000 / float64(run.Completed))
	}
	if sys.name == "gateway" {
		run.Target = metOrNot(run.PerSecond >= targetSessionsPerSecond)
	}
	return run
}

// closeConn closes c with a bound: a resumable session's Close waits for
// the peer's CLOSE, which the close timeout of the client bounds.
func closeConn(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // best effort
	c.Close()
}

// text prints the sessions table.
func (r *sessionsResult) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\ttransport\tworkers\tsessions/s\tdial p50 ms\tp90\tp99\tfirst echo p50 ms\tp90\tp99\tserver CPU ms/session\tclient CPU ms/session\tfailed\ttarget ≥3000/s\t")
	for _, x := range r.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.3f\t%d\t%s\t\n", x.System, x.Transport, x.Workers,
			x.PerSecond, x.Dial.P50, x.Dial.P90, x.Dial.P99, x.FirstEcho.P50, x.FirstEcho.P90, x.FirstEcho.P99,
			x.ServerCPUPerSession, x.ClientCPUPerSession, x.Failed, dash(x.Target))
	}
	tw.Flush()
	for _, x := range r.Runs {
		keys := make([]string, 0, len(x.Errors))
		for k := range x.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "error %s/%s ×%d: %s\n", x.System, x.Transport, x.Errors[k], k)
		}
	}
}
