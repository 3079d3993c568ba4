package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"text/tabwriter"
	"time"
)

// idleResult is the JSON result of the idle scenario.
type idleResult struct {
	System      string  `json:"system"`
	Transport   string  `json:"transport"`
	Upstream    string  `json:"upstream"`
	Warmup      int     `json:"warmup_sessions"`
	Sessions    int     `json:"sessions"` // measured sessions, open at the RSS reading
	Failed      int     `json:"failed"`
	OpenSeconds float64 `json:"open_seconds"`
	// Server RSS before (after the warm-up sessions) and after opening the
	// measured sessions (after the settle time), and the growth per session.
	RSSBefore       int64   `json:"rss_before_bytes"`
	RSSAfter        int64   `json:"rss_after_bytes"`
	RSSPerSession   float64 `json:"rss_per_session_bytes"`
	RSSPerSessionKB float64 `json:"rss_per_session_kib"`
	// From the gateway's /metrics when it exports the Go collector.
	GoroutinesPerSession float64        `json:"goroutines_per_session,omitempty"`
	HeapPerSession       float64        `json:"heap_inuse_per_session_bytes,omitempty"`
	StackPerSession      float64        `json:"stack_inuse_per_session_bytes,omitempty"`
	ClientRSSPerSession  float64        `json:"client_rss_per_session_bytes"`
	Target               string         `json:"target_12kib,omitempty"`
	Errors               map[string]int `json:"errors,omitempty"`
}

// targetIdleBytes is issue 8's idle memory target per session.
const targetIdleBytes = 12 << 10

func runIdle(ctx context.Context, b *bench, rep *report) (*idleResult, error) {
	tr := b.cfg.transports[0]
	if len(b.cfg.transports) > 1 {
		rep.Notes = append(rep.Notes, "idle measures the first transport only: "+tr)
	}
	sys := b.gatewaySystem(tr)
	if b.cfg.baselines {
		rep.Notes = append(rep.Notes, "idle: -baselines is not supported; measuring the gateway only")
	}
	if sys.pid == 0 {
		return nil, fmt.Errorf("dualbench: idle needs the gateway's pid (use -gateway, or -pid with -addr)")
	}
	up := parseUpstreamKind(b.cfg.upstream)
	res := &idleResult{System: sys.name, Transport: tr, Upstream: b.cfg.upstream, Errors: map[string]int{}}

	// Warm-up sessions in this process: the gateway's pools, maps and
	// first goroutines exist before the baseline RSS reading.
	warm := min(100, max(1, b.cfg.sessions/20))
	var warmConns []net.Conn
	defer func() { closeAll(warmConns, b.cfg.conns) }()
	for range warm {
		c, err := openIdle(ctx, sys, up)
		if err != nil {
			return res, fmt.Errorf("dualbench: idle warm-up: %w", err)
		}
		warmConns = append(warmConns, c)
	}
	res.Warmup = warm
	sleepCtx(ctx, b.cfg.settle)
	rss0, err := procRSS(sys.pid)
	if err != nil {
		return res, err
	}
	m0, _ := scrapeMetrics(ctx, b.httpc, b.gwAddr)

	// The measured sessions live in worker processes (see idleworker.go).
	n := b.cfg.sessions
	k := (n + sessionsPerWorker - 1) / sessionsPerWorker
	var workers []*idleWorker
	defer func() {
		fmt.Fprintf(b.log, "idle: closing %d sessions\n", n)
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.stop()
			}()
		}
		wg.Wait()
	}()
	t0 := time.Now()
	for i := range k {
		share := n / k
		if i < n%k {
			share++
		}
		w, err := startIdleWorker(b, share, max(1, b.cfg.conns/k))
		if err != nil {
			return res, err
		}
		workers = append(workers, w)
	}
	sum := func() (opened, failed int64) {
		for _, w := range workers {
			opened += w.opened.Load()
			failed += w.failed.Load()
		}
		return
	}
	prog := startProgress(b.log, fmt.Sprintf("idle open (%d workers)", k), func() string {
		o, f := sum()
		rss, _ := procRSS(sys.pid)
		return fmt.Sprintf("%6d/%d open, %d failed, gateway RSS %.1f MiB", o, n, f, float64(rss)/(1<<20))
	})
	for _, w := range workers {
		select {
		case <-w.ready:
		case <-w.exited:
		case <-ctx.Done():
		}
	}
	prog.stop()
	res.OpenSeconds = round3(time.Since(t0).Seconds())
	opened, failed := sum()
	res.Sessions, res.Failed = int(opened), int(failed)
	for _, w := range workers {
		w.mu.Lock()
		for _, e := range w.errs {
			if len(res.Errors) < maxErrorKinds || res.Errors[e] > 0 {
				res.Errors[e]++
			}
		}
		w.mu.Unlock()
		select {
		case <-w.exited:
			rep.Failures = append(rep.Failures, "idle: a worker process exited early")
		default:
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	fmt.Fprintf(b.log, "idle: %d sessions open (%d failed); settling %v\n", res.Sessions, res.Failed, b.cfg.settle)
	sleepCtx(ctx, b.cfg.settle)
	rss1, err := procRSS(sys.pid)
	if err != nil {
		return res, err
	}
	m1, _ := scrapeMetrics(ctx, b.httpc, b.gwAddr)
	var clientRSS int64
	for _, w := range workers {
		r, _ := procRSS(w.cmd.Process.Pid)
		clientRSS += r
	}
	res.RSSBefore, res.RSSAfter = rss0, rss1
	if res.Sessions > 0 {
		n := float64(res.Sessions)
		res.RSSPerSession = round3(float64(rss1-rss0) / n)
		res.RSSPerSessionKB = round3(res.RSSPerSession / 1024)
		res.ClientRSSPerSession = round3(float64(clientRSS) / n)
		perSession := func(name string) float64 {
			a, ok0 := m0.sum(name)
			z, ok1 := m1.sum(name)
			if !ok0 || !ok1 {
				return 0
			}
			return round3((z - a) / n)
		}
		res.GoroutinesPerSession = perSession("go_goroutines")
		res.HeapPerSession = perSession("go_memstats_heap_inuse_bytes")
		res.StackPerSession = perSession("go_memstats_stack_inuse_bytes")
		res.Target = metOrNot(res.RSSPerSession <= targetIdleBytes)
	}
	if res.Failed > 0 {
		first := ""
		for e := range res.Errors {
			first = e
			break
		}
		rep.Failures = append(rep.Failures, fmt.Sprintf("idle: %d of %d sessions failed to open (e.g. %s)", res.Failed, n, first))
	}
	return res, nil
}

// openIdle opens one session and does one round trip through the upstream
// (echo) or one write (sink), so that the gateway has dialled the upstream
// before the session goes idle.
func openIdle(ctx context.Context, sys *system, up upstreamKind) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, streamDialTimeout)
	defer cancel()
	c, err := sys.dial(dctx, up)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(streamDialTimeout)) //nolint:errcheck // bounds the round trip
	_, err = c.Write([]byte{1})
	if err == nil && echoes(up) {
		var b [1]byte
		_, err = io.ReadFull(c, b[:])
	}
	c.SetDeadline(time.Time{}) //nolint:errcheck // idle from now on
	if err != nil {
		closeConn(c)
		return nil, fmt.Errorf("first byte: %w", err)
	}
	return c, nil
}

// text prints the idle result.
func (r *idleResult) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\ttransport\tupstream\tsessions\tfailed\topen s\tRSS before MiB\tRSS after MiB\tKiB/session\tgoroutines/session\theap B/session\tstack B/session\ttarget ≤12 KiB\t")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.0f\t%.0f\t%s\t\n", r.System, r.Transport, r.Upstream,
		r.Sessions, r.Failed, r.OpenSeconds, float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20),
		r.RSSPerSessionKB, r.GoroutinesPerSession, r.HeapPerSession, r.StackPerSession, dash(r.Target))
	tw.Flush()
	for k, n := range r.Errors {
		fmt.Fprintf(w, "error ×%d: %s\n", n, k)
	}
}
