package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// chaosResult is the JSON result of the chaos scenario.
type chaosResult struct {
	Sessions     int    `json:"sessions"`
	EchoSessions int    `json:"echo_sessions"`
	SinkSessions int    `json:"sink_sessions"`
	Kills        int64  `json:"kills"`
	KillsRST     int64  `json:"kills_rst"`
	Resumes      int    `json:"resumes"` // client side: detached → connected
	BytesWritten uint64 `json:"bytes_written"`
	// BytesVerified counts bytes checked at their destination: echoed bytes
	// back at the client and sink bytes at the sink.
	BytesVerified   uint64  `json:"bytes_verified"`
	GatewayReplayed float64 `json:"gateway_bytes_replayed"`
	ClientReplayed  float64 `json:"client_bytes_replayed"`
	Mismatches      int     `json:"failed_sessions"`
	Verdict         string  `json:"verdict"` // ok | FAILED
}

func runChaos(ctx context.Context, b *bench, rep *report) (*chaosResult, error) {
	cfg := b.cfg
	res := &chaosResult{Sessions: cfg.sessions}
	var resumes atomic.Int64
	kind := func(i int) upstreamKind {
		if i%2 == 0 {
			return upstreamEcho
		}
		return upstreamSink
	}
	for i := range cfg.sessions {
		if kind(i) == upstreamEcho {
			res.EchoSessions++
		} else {
			res.SinkSessions++
		}
	}
	m0, merr := scrapeMetrics(ctx, b.httpc, b.gwAddr)
	sessions, err := openLiveSessions(ctx, b, cfg.sessions, kind, func(resumeSample) { resumes.Add(1) })
	if err != nil {
		return res, err
	}
	for _, s := range sessions {
		s.start(liveOptions{maxSize: cfg.sizes[0], randSizes: true, seed: cfg.seed})
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 0xc4a05))
	var written func() uint64 = func() uint64 {
		var n uint64
		for _, s := range sessions {
			n += s.written.Load()
		}
		return n
	}
	var kills, rst atomic.Int64
	var lastW uint64
	prog := startProgress(b.log, "chaos", func() string {
		w := written()
		s := fmt.Sprintf("%d kills, %d echo resumes, %.1f MB/s written", kills.Load(), resumes.Load(), float64(w-lastW)/1e6)
		lastW = w
		return s
	})
	end := time.Now().Add(cfg.duration)
	for time.Now().Before(end) && ctx.Err() == nil {
		// Exponential gaps with mean -kill-every; sometimes two kills in a
		// row (the second may hit the resuming transport).
		gap := time.Duration(rng.ExpFloat64() * float64(cfg.killEvery))
		if !sleepCtx(ctx, min(gap, time.Until(end))) {
			break
		}
		s := sessions[rng.IntN(len(sessions))]
		useRST := rng.IntN(2) == 0
		var stall time.Duration
		if b.cfg.stall > 0 && rng.IntN(2) == 0 {
			stall = time.Duration(rng.ExpFloat64() * float64(b.cfg.stall))
		}
		if s.proxy.stallThenKill(stall, useRST) {
			kills.Add(1)
			if useRST {
				rst.Add(1)
			}
		}
		if failed := firstFailure(sessions); failed != nil {
			break // no point in going on
		}
	}
	prog.stop()
	res.Kills, res.KillsRST = kills.Load(), rst.Load()
	fmt.Fprintf(b.log, "chaos: stopping writers and verifying the tails\n")
	for _, s := range sessions {
		res.ClientReplayed += s.clientReplayed()
		res.Resumes += len(s.detachedSamples())
	}
	type outcome struct {
		err      error
		verified uint64
	}
	outs := make(chan outcome, len(sessions))
	for _, s := range sessions {
		go func() {
			err := s.finish(b, finishTimeout)
			v := s.verified.Load()
			if s.up == upstreamSink {
				st, _ := b.sink.stream(s.id)
				v = st.bytes
			}
			outs <- outcome{err, v}
		}()
	}
	for range sessions {
		o := <-outs
		res.BytesVerified += o.verified
		if o.err != nil {
			res.Mismatches++
			rep.Failures = append(rep.Failures, "chaos: "+o.err.Error())
		}
	}
	res.BytesWritten = written()
	if m1, err := scrapeMetrics(ctx, b.httpc, b.gwAddr); err == nil && merr == nil {
		a, _ := m1.sumMatching("replayed")
		z, _ := m0.sumMatching("replayed")
		res.GatewayReplayed = a - z
	}
	if res.BytesVerified != res.BytesWritten && res.Mismatches == 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("chaos: %d bytes written, %d verified", res.BytesWritten, res.BytesVerified))
	}
	if res.BytesWritten == 0 {
		rep.Failures = append(rep.Failures, "chaos: nothing was written")
	}
	res.Verdict = "ok"
	if len(rep.Failures) > 0 {
		res.Verdict = "FAILED"
	}
	return res, ctx.Err()
}

// firstFailure returns the first session error, if any.
func firstFailure(ss []*liveSession) error {
	for _, s := range ss {
		if err := s.firstErr(); err != nil {
			return err
		}
	}
	return nil
}

// text prints the chaos totals.
func (r *chaosResult) text(w io.Writer) {
	fmt.Fprintf(w, "chaos %s: %d sessions (%d echo, %d sink), %d kills (%d RST), %d resumes\n",
		r.Verdict, r.Sessions, r.EchoSessions, r.SinkSessions, r.Kills, r.KillsRST, r.Resumes)
	fmt.Fprintf(w, "bytes written %d, verified %d; replayed by gateway %.0f, by clients %.0f; failed sessions %d\n",
		r.BytesWritten, r.BytesVerified, r.GatewayReplayed, r.ClientReplayed, r.Mismatches)
}
