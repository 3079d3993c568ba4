package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
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
	up := upstreamSink
	if b.cfg.upstream == "echo" {
		up = upstreamEcho
	}
	res := &idleResult{System: sys.name, Transport: tr, Upstream: b.cfg.upstream, Errors: map[string]int{}}
	warm := min(100, max(1, b.cfg.sessions/20))
	res.Warmup = warm

	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	defer func() {
		// Close everything with cfg.conns closers; each Close is bounded.
		fmt.Fprintf(b.log, "idle: closing %d sessions\n", len(conns))
		ch := make(chan net.Conn)
		var wg sync.WaitGroup
		for range b.cfg.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c := range ch {
					closeConn(c)
				}
			}()
		}
		for _, c := range conns {
			ch <- c
		}
		close(ch)
		wg.Wait()
	}()
	open := func(n int, label string) (int, error) {
		var opened, failed atomic.Int64
		jobs := make(chan struct{})
		var wg sync.WaitGroup
		for range b.cfg.conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					c, err := openIdle(ctx, sys, up)
					if err != nil {
						failed.Add(1)
						mu.Lock()
						if len(res.Errors) < maxErrorKinds || res.Errors[err.Error()] > 0 {
							res.Errors[err.Error()]++
						}
						mu.Unlock()
						continue
					}
					opened.Add(1)
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			}()
		}
		prog := startProgress(b.log, "idle "+label, func() string {
			rss, _ := procRSS(sys.pid)
			return fmt.Sprintf("%6d/%d open, %d failed, gateway RSS %.1f MiB", opened.Load(), n, failed.Load(), float64(rss)/(1<<20))
		})
		for i := 0; i < n && ctx.Err() == nil; i++ {
			jobs <- struct{}{}
		}
		close(jobs)
		wg.Wait()
		prog.stop()
		return int(failed.Load()), ctx.Err()
	}

	if _, err := open(warm, "warm-up"); err != nil {
		return res, err
	}
	sleepCtx(ctx, b.cfg.settle)
	rss0, err := procRSS(sys.pid)
	if err != nil {
		return res, err
	}
	m0, _ := scrapeMetrics(ctx, b.httpc, b.gwAddr)
	crss0, _ := procRSS(os.Getpid())
	t0 := time.Now()
	failed, err := open(b.cfg.sessions, "open")
	res.OpenSeconds = round3(time.Since(t0).Seconds())
	res.Failed = failed
	if err != nil {
		return res, err
	}
	mu.Lock()
	res.Sessions = len(conns) - warm
	mu.Unlock()
	fmt.Fprintf(b.log, "idle: %d sessions open; settling %v\n", res.Sessions, b.cfg.settle)
	sleepCtx(ctx, b.cfg.settle)
	rss1, err := procRSS(sys.pid)
	if err != nil {
		return res, err
	}
	m1, _ := scrapeMetrics(ctx, b.httpc, b.gwAddr)
	crss1, _ := procRSS(os.Getpid())
	res.RSSBefore, res.RSSAfter = rss0, rss1
	if res.Sessions > 0 {
		n := float64(res.Sessions)
		res.RSSPerSession = round3(float64(rss1-rss0) / n)
		res.RSSPerSessionKB = round3(res.RSSPerSession / 1024)
		res.ClientRSSPerSession = round3(float64(crss1-crss0) / n)
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
		rep.Failures = append(rep.Failures, fmt.Sprintf("idle: %d sessions failed to open (%v)", res.Failed, res.Errors))
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
	if err == nil && up == upstreamEcho {
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
