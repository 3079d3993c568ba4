package resumetest

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards loopback TCP connections to a target and injects faults.
// It is safe for concurrent use. Close (registered as a test cleanup by
// NewProxy) stops it and waits for all its goroutines.
type Proxy struct {
	ln     net.Listener
	target string

	budget atomic.Pointer[func() int64]

	mu     sync.Mutex
	pairs  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted, killed, blackholed atomic.Int64
}

type pair struct {
	p          *Proxy
	a, b       net.Conn
	budget     atomic.Int64 // < 0: unlimited
	blackholed atomic.Bool
	once       sync.Once
}

// NewProxy starts a proxy to target on 127.0.0.1.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("resumetest: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, pairs: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.routineAccept()
	tb.Cleanup(p.Close)
	return p
}

// SetBudget sets a function called for every new connection that returns
// how many bytes (both directions together) it may carry before it is
// killed; a negative value means no limit. Small budgets kill handshakes and
// resumes; others kill in the middle of frames. nil removes it.
func (p *Proxy) SetBudget(f func() int64) {
	if f == nil {
		p.budget.Store(nil)
		return
	}
	p.budget.Store(&f)
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Stats returns how many connections were accepted, killed and blackholed.
func (p *Proxy) Stats() (accepted, killed, blackholed int64) {
	return p.accepted.Load(), p.killed.Load(), p.blackholed.Load()
}

func (p *Proxy) routineAccept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		pr := &pair{p: p, a: a, b: b}
		pr.budget.Store(-1)
		if f := p.budget.Load(); f != nil {
			pr.budget.Store((*f)())
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			a.Close()
			b.Close()
			return
		}
		p.pairs[pr] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		p.accepted.Add(1)
		go pr.routineCopy(a, b)
		go pr.routineCopy(b, a)
	}
}

// routineCopy forwards src to dst in small random chunks, honouring the
// budget and the blackhole flag.
func (pr *pair) routineCopy(dst, src net.Conn) {
	defer pr.p.wg.Done()
	defer pr.kill(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf[:1+rand.IntN(len(buf))])
		if n > 0 && !pr.blackholed.Load() {
			chunk := buf[:n]
			cut := false
			if b := pr.budget.Load(); b >= 0 {
				left := pr.budget.Add(-int64(n))
				if left < 0 {
					keep := max(int64(n)+left, 0)
					chunk, cut = chunk[:keep], true
				}
			}
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
			if cut {
				pr.kill(true)
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A clean FIN is forwarded as a full close: the protocol
				// never half-closes.
				return
			}
			return
		}
	}
}

// kill closes both sides abruptly (RST where possible).
func (pr *pair) kill(count bool) {
	pr.once.Do(func() {
		if count {
			pr.p.killed.Add(1)
		}
		for _, c := range []net.Conn{pr.a, pr.b} {
			if tc, ok := c.(*net.TCPConn); ok && count {
				tc.SetLinger(0) //nolint:errcheck
			}
			c.Close()
		}
		pr.p.mu.Lock()
		delete(pr.p.pairs, pr)
		pr.p.mu.Unlock()
	})
}

func (p *Proxy) snapshot() []*pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		l = append(l, pr)
	}
	return l
}

// KillAll kills every current connection and returns how many.
func (p *Proxy) KillAll() int {
	l := p.snapshot()
	for _, pr := range l {
		pr.kill(true)
	}
	return len(l)
}

// KillRandom kills each current connection with probability prob.
func (p *Proxy) KillRandom(prob float64) int {
	n := 0
	for _, pr := range p.snapshot() {
		if rand.Float64() < prob {
			pr.kill(true)
			n++
		}
	}
	return n
}

// BlackholeRandom makes each current connection, with probability prob,
// half-open: from now on its bytes are read and dropped in both directions
// and no FIN is sent, until an endpoint closes it.
func (p *Proxy) BlackholeRandom(prob float64) int {
	n := 0
	for _, pr := range p.snapshot() {
		if rand.Float64() < prob && !pr.blackholed.Swap(true) {
			p.blackholed.Add(1)
			n++
		}
	}
	return n
}

// WaitConns waits (up to 30 s) until n connections are open.
func (p *Proxy) WaitConns(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for p.Conns() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("resumetest: %d connections open, want %d", p.Conns(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Conns returns the number of open connections.
func (p *Proxy) Conns() int { return len(p.snapshot()) }

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	for _, pr := range p.snapshot() {
		pr.kill(false)
	}
	p.wg.Wait()
}
