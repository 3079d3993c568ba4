package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy relays TCP connections to a target and injects faults. Create it
// with New; the zero value is unusable. A Proxy is safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string
	opts   Options

	ctx    context.Context // cancelled by Close: stops dials and back-offs
	cancel context.CancelFunc

	budget atomic.Pointer[func() Budget]

	accepted, dialErrors atomic.Int64

	// state groups what mu guards.
	state struct {
		mu      sync.Mutex
		rng     *rand.Rand
		closed  bool
		nextID  uint64
		links   map[*link]struct{} // live links: forwarding or discarding
		held    []net.Conn         // sockets kept open by HalfOpen and Blackhole
		faults  [numFaults]int64
		changed chan struct{} // closed and replaced whenever links changes
	}

	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup // accept loop and relays
}

// Stats is a snapshot of a Proxy's counters, returned by Proxy.Stats; it is
// a plain value that nothing updates.
type Stats struct {
	// Accepted counts the client connections accepted, DialErrors those
	// of them whose target could not be dialled (they were closed).
	Accepted, DialErrors int64
	// Live is the number of live links (forwarding or discarding), Held
	// the number of sockets held open by HalfOpen and Blackhole.
	Live, Held int
	// Faults counts the faults injected, by kind; kinds never injected
	// are absent.
	Faults map[Fault]int64
}

// New listens on opts.ListenAddr and relays every connection to target.
func New(target string, opts *Options) (*Proxy, error) {
	o := opts.cloneWithDefaults()
	ln, err := net.Listen("tcp", o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, opts: o}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.state.rng = o.Rand
	p.state.links = make(map[*link]struct{})
	p.state.changed = make(chan struct{})
	p.SetBudget(o.Budget)
	p.wg.Add(1)
	go p.routineAccept()
	return p, nil
}

// Addr returns the address clients dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetBudget sets the function that gives a link its Budget the first time
// the link forwards bytes while a function is set; nil removes it. Links
// keep a budget once drawn, so removing the function stops budgets from
// being drawn, not from running out. f is called from the relays, possibly
// concurrently, and must not block.
func (p *Proxy) SetBudget(f func() Budget) {
	if f == nil {
		p.budget.Store(nil)
		return
	}
	p.budget.Store(&f)
}

// Strike injects f into every live link now and returns how many it struck
// (a discarding link is not struck with Discard again).
func (p *Proxy) Strike(f Fault) int { return p.StrikeRandom(f, 1) }

// StrikeRandom injects f into each live link with probability prob and
// returns how many it struck.
func (p *Proxy) StrikeRandom(f Fault, prob float64) int {
	if !f.valid() {
		return 0
	}
	p.state.mu.Lock()
	chosen := make([]*link, 0, len(p.state.links))
	for l := range p.state.links {
		if prob >= 1 || p.state.rng.Float64() < prob {
			chosen = append(chosen, l)
		}
	}
	p.state.mu.Unlock()
	n := 0
	for _, l := range chosen {
		if l.strike(f) {
			n++
		}
	}
	return n
}

// Conns returns the number of live links.
func (p *Proxy) Conns() int {
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	return len(p.state.links)
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	s := Stats{
		Accepted:   p.accepted.Load(),
		DialErrors: p.dialErrors.Load(),
		Live:       len(p.state.links),
		Held:       len(p.state.held),
		Faults:     make(map[Fault]int64),
	}
	for f, n := range p.state.faults {
		if n > 0 {
			s.Faults[Fault(f)] = n
		}
	}
	return s
}

// WaitConns waits until exactly n links are live. Without a deadline on
// ctx it gives up after Options.WaitTimeout. It returns an error wrapping
// ctx.Err() on timeout, and one wrapping net.ErrClosed once the proxy is
// closed with a different count.
func (p *Proxy) WaitConns(ctx context.Context, n int) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.WaitTimeout)
		defer cancel()
	}
	for {
		p.state.mu.Lock()
		live, closed, changed := len(p.state.links), p.state.closed, p.state.changed
		p.state.mu.Unlock()
		switch {
		case live == n:
			return nil
		case closed:
			return fmt.Errorf("faultproxy: %d links live, want %d: %w", live, n, net.ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("faultproxy: %d links live, want %d: %w", p.Conns(), n, ctx.Err())
		}
	}
}

// Close stops the proxy: it stops accepting, closes every socket, held ones
// included, and waits (up to Options.CloseTimeout) for its goroutines.
// Close is idempotent; later calls return the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.state.mu.Lock()
		p.state.closed = true
		links := p.liveLocked()
		held := p.state.held
		p.state.held = nil
		p.notifyLocked()
		p.state.mu.Unlock()
		// Cancel first so that a dial in progress gives up, then close the
		// listener so the accept loop returns, then the sockets so that
		// every relay's read fails.
		p.cancel()
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.closeErr = fmt.Errorf("faultproxy: %w", err)
		}
		for _, l := range links {
			l.end()
		}
		for _, c := range held {
			_ = c.Close()
		}
		if !waitTimeout(&p.wg, p.opts.CloseTimeout) {
			p.closeErr = errors.Join(p.closeErr, errors.New("faultproxy: goroutines still running after close (blocked Tap?)"))
		}
	})
	return p.closeErr
}

// waitTimeout waits for wg for at most d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// routineAccept accepts client connections until Close, backing off on
// temporary errors as http.Server.Serve does.
func (p *Proxy) routineAccept() {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.opts.Logger.Warn("faultproxy: accept", "err", err, "retry", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		p.connect(c)
	}
}

// connect dials the target for client connection c and starts its link.
func (p *Proxy) connect(c net.Conn) {
	info := LinkInfo{Accepted: time.Now(), Client: c.RemoteAddr()}
	p.accepted.Add(1)
	p.state.mu.Lock()
	p.state.nextID++
	info.ID = p.state.nextID
	p.state.mu.Unlock()
	d := net.Dialer{Timeout: p.opts.DialTimeout}
	t, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		p.dialErrors.Add(1)
		p.opts.Logger.Warn("faultproxy: dial target", "target", p.target, "err", err)
		_ = c.Close()
		return
	}
	info.Target = t.RemoteAddr()
	if n := p.opts.SocketBuffer; n > 0 {
		for _, s := range []net.Conn{c, t} {
			if tc, ok := s.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(n)
				_ = tc.SetWriteBuffer(n)
			}
		}
	}
	l := &link{p: p, info: info, client: c, target: t}
	l.left = [3]int64{Unlimited, Unlimited, Unlimited}
	if p.opts.Tap != nil {
		l.tap = p.opts.Tap(info)
	}
	p.state.mu.Lock()
	if p.state.closed {
		p.state.mu.Unlock()
		_ = c.Close()
		_ = t.Close()
		return
	}
	var rngs [2]*rand.Rand
	if p.opts.RandomChunks {
		for i := range rngs {
			rngs[i] = rand.New(rand.NewPCG(p.state.rng.Uint64(), p.state.rng.Uint64()))
		}
	}
	p.state.links[l] = struct{}{}
	p.notifyLocked()
	p.wg.Add(2)
	p.state.mu.Unlock()
	go l.routineRelay(ToTarget, t, c, rngs[ToTarget])
	go l.routineRelay(ToClient, c, t, rngs[ToClient])
}

// liveLocked returns the live links. The caller must hold p.state.mu.
func (p *Proxy) liveLocked() []*link {
	l := make([]*link, 0, len(p.state.links))
	for k := range p.state.links {
		l = append(l, k)
	}
	return l
}

// notifyLocked wakes WaitConns. The caller must hold p.state.mu.
func (p *Proxy) notifyLocked() {
	close(p.state.changed)
	p.state.changed = make(chan struct{})
}

// record counts fault f, struck on l, and forgets l unless it stays live.
func (p *Proxy) record(l *link, f Fault) {
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	p.state.faults[f]++
	if f != Discard {
		p.removeLocked(l)
	}
}

// remove forgets l, which has closed.
func (p *Proxy) remove(l *link) {
	p.state.mu.Lock()
	defer p.state.mu.Unlock()
	p.removeLocked(l)
}

// removeLocked forgets l. The caller must hold p.state.mu.
func (p *Proxy) removeLocked(l *link) {
	if _, ok := p.state.links[l]; ok {
		delete(p.state.links, l)
		p.notifyLocked()
	}
}

// hold keeps sockets open until Close (or closes them now if it ran).
func (p *Proxy) hold(cs ...net.Conn) {
	p.state.mu.Lock()
	closed := p.state.closed
	if !closed {
		p.state.held = append(p.state.held, cs...)
	}
	p.state.mu.Unlock()
	if closed {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}
