package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// resumeResult is the JSON result of the resume scenario.
type resumeResult struct {
	Sessions   int   `json:"sessions"`
	Kills      int64 `json:"kills"`
	Measured   int   `json:"measured"`   // kills followed by DATA on a new transport
	Unmeasured int64 `json:"unmeasured"` // kills without DATA afterwards within the run
	// DialToFirstData is from the new transport's connection (accepted by the
	// fault proxy) to the first DATA message the gateway sends on it: the
	// resume handshake, CONFIRM, and the first retransmitted bytes.
	DialToFirstData latencySummary `json:"dial_to_first_data"`
	// DialToServerHello and ServerHelloToFirstData split DialToFirstData
	// at the server hello as the proxy sees it: the TCP connect, the
	// WebSocket upgrade and the gateway's handshake, then the client's
	// CONFIRM and the gateway's first retransmitted DATA.
	DialToServerHello      latencySummary `json:"dial_to_server_hello"`
	ServerHelloToFirstData latencySummary `json:"server_hello_to_first_data"`
	// GatewayTime is the gateway's own part of DialToFirstData, as the
	// proxy sees it: for each of the three exchanges — upgrade request →
	// 101 response, client hello → server hello, CONFIRM → first DATA —
	// from the chunk that carries the last byte of the client's message to
	// the chunk that carries the first byte of the gateway's answer, summed.
	// Each exchange includes two loopback hops between the proxy and the
	// gateway. ClientProxyTime is the rest of DialToFirstData: the client
	// (and its hops through the proxy) before the request and between the
	// exchanges, the proxy's own dial of the gateway, and the first DATA
	// message passing the proxy (first byte to last). Per sample the two
	// add up to DialToFirstData exactly; a sample whose instants are
	// missing or out of order (the parts would not add up) is counted in
	// Unattributed and left out of both.
	GatewayTime     latencySummary `json:"gateway_time"`
	ClientProxyTime latencySummary `json:"client_proxy_time"`
	// GatewayUpgrade, GatewayHello and GatewayReplay are GatewayTime's
	// three exchanges on their own (same samples).
	GatewayUpgrade latencySummary `json:"gateway_upgrade"`
	GatewayHello   latencySummary `json:"gateway_hello"`
	GatewayReplay  latencySummary `json:"gateway_confirm_to_data"`
	Unattributed   int            `json:"unattributed"`
	// KillToFirstData adds the client's detection of the loss and its
	// reconnect back-off.
	KillToFirstData latencySummary `json:"kill_to_first_data"`
	// ClientDetached is the client's own view: StateDetached → StateConnected.
	ClientDetached latencySummary `json:"client_detached"`
	MaxAttempts    int            `json:"max_attempts"`
	// Bytes retransmitted after resumes: by the gateway (its /metrics) and
	// by the clients (their own metrics).
	GatewayReplayed     float64  `json:"gateway_bytes_replayed"`
	GatewayReplayedFrom []string `json:"gateway_replayed_metrics,omitempty"`
	ClientReplayed      float64  `json:"client_bytes_replayed"`
	BytesVerified       uint64   `json:"bytes_verified"`
	BytesDropped        int64    `json:"bytes_dropped_in_transit"` // by the stalls before kills
	Target              string   `json:"target_p99_5ms,omitempty"`
}

// targetResumeP99 is issue 8's resume target (dial to first replayed byte).
const targetResumeP99 = 5 * time.Millisecond

// finishTimeout bounds waiting for the last bytes of a live session.
const finishTimeout = 60 * time.Second

func runResume(ctx context.Context, b *bench, rep *report) (*resumeResult, error) {
	res := &resumeResult{Sessions: b.cfg.sessions}
	var dial, kill, toHello, fromHello, gateway, rest latencies
	var exchanges [3]latencies
	var maxAttempts, unattributed atomic.Int64
	onSample := func(s resumeSample) {
		dial.add(s.DialToData)
		kill.add(s.KillToData)
		toHello.add(s.DialToHello)
		fromHello.add(s.HelloToData)
		if s.Attributed {
			gateway.add(s.Gateway)
			rest.add(s.ClientProxy)
			for i, d := range s.Exchanges {
				exchanges[i].add(d)
			}
		} else {
			unattributed.Add(1)
		}
		for {
			m := maxAttempts.Load()
			if int64(s.Attempts) <= m || maxAttempts.CompareAndSwap(m, int64(s.Attempts)) {
				break
			}
		}
	}
	m0, merr := scrapeMetrics(ctx, b.httpc, b.gwAddr)
	sessions, err := openLiveSessions(ctx, b, b.cfg.sessions, func(int) upstreamKind { return upstreamEcho }, onSample)
	defer func() {
		for _, s := range sessions {
			s.proxy.Close() // idempotent after finish
		}
	}()
	if err != nil {
		return res, err
	}
	for _, s := range sessions {
		s.start(liveOptions{maxSize: b.cfg.sizes[0], rate: b.cfg.rate, seed: b.cfg.seed})
	}
	sleepCtx(ctx, b.cfg.warmup)
	var kills atomic.Int64
	prog := startProgress(b.log, "resume", func() string {
		return fmt.Sprintf("%d kills, %d measured", kills.Load(), dial.count())
	})
	tick := time.NewTicker(b.cfg.killEvery)
	end := time.NewTimer(b.cfg.duration)
	next := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end.C:
			break loop
		case <-tick.C:
		}
		// Kill the next session whose previous resume is complete.
		for range sessions {
			s := sessions[next%len(sessions)]
			next++
			if s.proxy.pending() || !s.connected() || s.firstErr() != nil {
				continue
			}
			if s.proxy.stallThenKill(b.cfg.stall, kills.Load()%2 == 1) {
				kills.Add(1)
			}
			break
		}
	}
	tick.Stop()
	end.Stop()
	// Let the last resumes complete before stopping the traffic.
	deadline := time.Now().Add(finishTimeout)
	for time.Now().Before(deadline) && anyPending(sessions) {
		time.Sleep(5 * time.Millisecond)
	}
	prog.stop()
	res.Kills = kills.Load()
	var detached []time.Duration
	var errs []string
	for _, s := range sessions {
		if !s.proxy.pending() {
			continue
		}
		res.Unmeasured++
	}
	for _, s := range sessions {
		res.ClientReplayed += s.clientReplayed()
		detached = append(detached, s.detachedSamples()...)
		if err := s.finish(b, finishTimeout); err != nil {
			errs = append(errs, err.Error())
		}
		res.BytesVerified += s.verified.Load()
		res.BytesDropped += s.proxy.dropped.Load()
	}
	res.Measured = dial.count()
	res.DialToFirstData, res.KillToFirstData = dial.summary(), kill.summary()
	res.DialToServerHello, res.ServerHelloToFirstData = toHello.summary(), fromHello.summary()
	res.GatewayTime, res.ClientProxyTime = gateway.summary(), rest.summary()
	res.GatewayUpgrade, res.GatewayHello, res.GatewayReplay = exchanges[0].summary(), exchanges[1].summary(), exchanges[2].summary()
	res.Unattributed = int(unattributed.Load())
	res.ClientDetached = summarize(detached)
	res.MaxAttempts = int(maxAttempts.Load())
	if m1, err := scrapeMetrics(ctx, b.httpc, b.gwAddr); err == nil && merr == nil {
		a, names := m1.sumMatching("replayed")
		z, _ := m0.sumMatching("replayed")
		res.GatewayReplayed, res.GatewayReplayedFrom = a-z, names
	}
	if res.Measured > 0 {
		res.Target = metOrNot(res.DialToFirstData.P99 <= ms(targetResumeP99))
	}
	rep.Failures = append(rep.Failures, errs...)
	if res.Kills > 0 && res.Measured == 0 {
		rep.Failures = append(rep.Failures, "resume: no resume was measured")
	}
	return res, ctx.Err()
}

// openLiveSessions opens n live sessions concurrently; kind picks each
// session's upstream.
func openLiveSessions(ctx context.Context, b *bench, n int, kind func(i int) upstreamKind, onSample func(resumeSample)) ([]*liveSession, error) {
	out := make([]*liveSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = openLive(ctx, b, uint64(i+1), kind(i), onSample)
		}()
	}
	wg.Wait()
	var opened []*liveSession
	var first error
	for i := range n {
		if errs[i] != nil && first == nil {
			first = errs[i]
		}
		if out[i] != nil {
			opened = append(opened, out[i])
		}
	}
	if first != nil {
		for _, s := range opened {
			closeConn(s.conn)
			s.proxy.Close()
		}
		return nil, first
	}
	return opened, nil
}

// anyPending reports whether a kill still awaits its resume.
func anyPending(ss []*liveSession) bool {
	for _, s := range ss {
		if s.proxy.pending() && s.firstErr() == nil {
			return true
		}
	}
	return false
}

// text prints the resume result.
func (r *resumeResult) text(w io.Writer) {
	rows := []struct {
		name string
		s    latencySummary
	}{{"dial → first DATA", r.DialToFirstData}, {"  dial → server hello", r.DialToServerHello},
		{"  server hello → first DATA", r.ServerHelloToFirstData},
		{"  gateway", r.GatewayTime}, {"    GET → 101", r.GatewayUpgrade}, {"    client hello → server hello", r.GatewayHello},
		{"    CONFIRM → first DATA", r.GatewayReplay}, {"  client + proxy", r.ClientProxyTime},
		{"kill → first DATA", r.KillToFirstData}, {"client detached", r.ClientDetached}}
	width := 0
	for _, x := range rows {
		width = max(width, utf8.RuneCountInString(x.name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tcount\tp50 ms\tp90 ms\tp99 ms\tmax ms\t\n", width, "what")
	for _, x := range rows {
		// Padded to one width, so that the names line up on the left.
		pad := strings.Repeat(" ", width-utf8.RuneCountInString(x.name))
		fmt.Fprintf(tw, "%s%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t\n", x.name, pad, x.s.Count, x.s.P50, x.s.P90, x.s.P99, x.s.Max)
	}
	tw.Flush()
	fmt.Fprintln(w, "gateway: (GET → 101) + (client hello → server hello) + (CONFIRM → first DATA), from a message's last byte to the answer's first, at the proxy; client + proxy: the rest")
	fmt.Fprintf(w, "sessions %d, kills %d, measured %d, unmeasured %d, unattributed %d, max attempts %d\n",
		r.Sessions, r.Kills, r.Measured, r.Unmeasured, r.Unattributed, r.MaxAttempts)
	fmt.Fprintf(w, "bytes replayed: gateway %.0f (%v), clients %.0f; dropped in transit %d; bytes verified %d; target p99 ≤ 5 ms: %s\n",
		r.GatewayReplayed, r.GatewayReplayedFrom, r.ClientReplayed, r.BytesDropped, r.BytesVerified, dash(r.Target))
}
