package resumetest

import (
	"context"
	"testing"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// Proxy forwards loopback TCP connections to a target and injects faults:
// kills (RST) and blackholes (faultproxy.Discard: bytes read and dropped
// both ways, no FIN, until an endpoint closes). It relays in chunks of
// random size, so peers see their streams split at arbitrary points. It is
// safe for concurrent use. Close (registered as a test cleanup by NewProxy)
// stops it and waits for all its goroutines.
type Proxy struct {
	fp *faultproxy.Proxy
}

// NewProxy starts a proxy to target on 127.0.0.1.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	fp, err := faultproxy.New(target, &faultproxy.Options{RandomChunks: true})
	if err != nil {
		tb.Fatalf("resumetest: %v", err)
	}
	p := &Proxy{fp: fp}
	tb.Cleanup(p.Close)
	return p
}

// SetBudget sets a function called for every new connection that returns
// how many bytes (both directions together) it may carry before it is
// killed; a negative value means no limit. Small budgets kill handshakes and
// resumes; others kill in the middle of frames. nil removes it.
func (p *Proxy) SetBudget(f func() int64) {
	if f == nil {
		p.fp.SetBudget(nil)
		return
	}
	p.fp.SetBudget(func() faultproxy.Budget { return faultproxy.TotalBudget(f(), faultproxy.Reset) })
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.fp.Addr() }

// Stats returns how many connections were accepted, killed and blackholed.
func (p *Proxy) Stats() (accepted, killed, blackholed int64) {
	s := p.fp.Stats()
	return s.Accepted - s.DialErrors, s.Faults[faultproxy.Reset], s.Faults[faultproxy.Discard]
}

// KillAll kills every current connection and returns how many.
func (p *Proxy) KillAll() int { return p.fp.Strike(faultproxy.Reset) }

// KillRandom kills each current connection with probability prob.
func (p *Proxy) KillRandom(prob float64) int { return p.fp.StrikeRandom(faultproxy.Reset, prob) }

// BlackholeRandom makes each current connection, with probability prob,
// half-open: from now on its bytes are read and dropped in both directions
// and no FIN is sent, until an endpoint closes it.
func (p *Proxy) BlackholeRandom(prob float64) int {
	return p.fp.StrikeRandom(faultproxy.Discard, prob)
}

// WaitConns waits (up to 30 s) until n connections are open.
func (p *Proxy) WaitConns(tb testing.TB, n int) {
	tb.Helper()
	if err := p.fp.WaitConns(context.Background(), n); err != nil {
		tb.Fatalf("resumetest: %v", err)
	}
}

// Conns returns the number of open connections.
func (p *Proxy) Conns() int { return p.fp.Conns() }

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *Proxy) Close() { _ = p.fp.Close() }
