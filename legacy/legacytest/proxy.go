package legacytest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Fault is what Proxy does to a link when its byte budget runs out.
type Fault int

const (
	// Drop closes both sides of the link (FIN).
	Drop Fault = iota
	// Reset aborts both sides (RST, via SO_LINGER 0).
	Reset
	// HalfOpen closes the client side but keeps the server side open and
	// silent: the server sees nothing, its reads hang and, once the socket
	// buffers fill, so do its writes.
	HalfOpen
	// Blackhole stops forwarding both ways and keeps both sides open; only
	// a timeout can tell either end.
	Blackhole
	numFaults
)

func (f Fault) String() string {
	switch f {
	case Drop:
		return "drop"
	case Reset:
		return "reset"
	case HalfOpen:
		return "half-open"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Options configures a Proxy. The zero value forwards without faults.
type Options struct {
	// MinBytes and MaxBytes bound the bytes (both directions together) a
	// link forwards once chaos is on before its fault strikes; the budget
	// is uniform in [MinBytes, MaxBytes].
	MinBytes, MaxBytes int
	// Faults lists the faults to choose from, uniformly; empty means all.
	Faults []Fault
	// Seed seeds the proxy's random choices.
	Seed uint64
	// SocketBuffer, when positive, sets SO_RCVBUF and SO_SNDBUF of both
	// sides, so that a silent link blocks its peer's writes quickly.
	SocketBuffer int
}

// Proxy forwards loopback TCP connections to a target and injects faults.
// Create it with New; the zero value is unusable. It is safe for concurrent
// use. Close releases every socket it holds, including half-open remnants.
type Proxy struct {
	ln     net.Listener
	target string
	opts   Options

	mu     sync.Mutex
	rng    *rand.Rand
	chaos  bool
	closed bool
	links  map[*link]struct{}
	held   []net.Conn // sockets kept open by HalfOpen and Blackhole
	counts [numFaults]int
	wg     sync.WaitGroup
}

// New listens on 127.0.0.1 and forwards every connection to target.
func New(target string, opts *Options) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("legacytest: %w", err)
	}
	p := &Proxy{ln: ln, target: target, links: make(map[*link]struct{})}
	if opts != nil {
		p.opts = *opts
	}
	if len(p.opts.Faults) == 0 {
		p.opts.Faults = []Fault{Drop, Reset, HalfOpen, Blackhole}
	}
	p.rng = rand.New(rand.NewPCG(p.opts.Seed, 0x1e9ac7))
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetChaos turns fault injection on or off. Links draw their budget when
// chaos is first on while they forward.
func (p *Proxy) SetChaos(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chaos = on
}

// Counts returns how many faults of each kind were injected.
func (p *Proxy) Counts() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[Fault]int)
	for f, n := range p.counts {
		if n > 0 {
			m[Fault(f)] = n
		}
	}
	return m
}

// Strike injects fault f into every live link now.
func (p *Proxy) Strike(f Fault) int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.strike(f)
	}
	return len(links)
}

// Close stops the proxy, closes every socket and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	held := p.held
	p.held = nil
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.closeBoth()
	}
	for _, c := range held {
		_ = c.Close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.DialTimeout("tcp", p.target, 10*time.Second)
		if err != nil {
			_ = a.Close()
			continue
		}
		if n := p.opts.SocketBuffer; n > 0 {
			for _, c := range []net.Conn{a, b} {
				_ = c.(*net.TCPConn).SetReadBuffer(n)
				_ = c.(*net.TCPConn).SetWriteBuffer(n)
			}
		}
		l := &link{p: p, a: a, b: b, budget: -1}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = a.Close()
			_ = b.Close()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go l.pipe(a, b)
		go l.pipe(b, a)
	}
}

// link is one proxied connection: a is the client side, b the server side.
type link struct {
	p    *Proxy
	a, b net.Conn

	mu     sync.Mutex
	budget int // bytes left before the fault; -1 until chaos draws one
	fault  Fault
	struck bool
	done   int // pipes finished
}

// allow returns how many of n bytes may pass and whether the fault strikes
// after them.
func (l *link) allow(n int) (int, bool) {
	l.p.mu.Lock()
	chaos := l.p.chaos
	var budget int
	var fault Fault
	if chaos {
		lo, hi := l.p.opts.MinBytes, max(l.p.opts.MaxBytes, l.p.opts.MinBytes)
		budget = lo + l.p.rng.IntN(hi-lo+1)
		fault = l.p.opts.Faults[l.p.rng.IntN(len(l.p.opts.Faults))]
	}
	l.p.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.struck {
		return 0, false
	}
	if l.budget < 0 {
		if !chaos || l.p.opts.MaxBytes <= 0 {
			return n, false
		}
		l.budget, l.fault = budget, fault
	}
	if n < l.budget {
		l.budget -= n
		return n, false
	}
	k := l.budget
	l.budget = 0
	return k, true
}

func (l *link) pipe(dst, src net.Conn) {
	defer l.pipeDone()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			k, strike := l.allow(n)
			if k > 0 {
				if _, werr := dst.Write(buf[:k]); werr != nil {
					l.closeBoth()
					return
				}
			}
			if strike {
				l.p.mu.Lock()
				f := l.fault
				l.p.mu.Unlock()
				l.strike(f)
				return
			}
			l.mu.Lock()
			struck := l.struck
			l.mu.Unlock()
			if struck {
				return
			}
		}
		if err != nil {
			if !l.isStruck() {
				l.closeBoth() // an end closed: pass it on
			}
			return
		}
	}
}

func (l *link) isStruck() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.struck
}

// strike applies fault f once.
func (l *link) strike(f Fault) {
	l.mu.Lock()
	if l.struck {
		l.mu.Unlock()
		return
	}
	l.struck = true
	l.mu.Unlock()
	l.p.mu.Lock()
	l.p.counts[f]++
	l.p.mu.Unlock()
	past := time.Unix(1, 0)
	switch f {
	case Drop:
		l.closeBoth()
	case Reset:
		for _, c := range []net.Conn{l.a, l.b} {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		l.closeBoth()
	case HalfOpen:
		_ = l.a.Close()
		_ = l.b.SetReadDeadline(past) // stop our reader; b stays open
		l.hold(l.b)
	case Blackhole:
		_ = l.a.SetReadDeadline(past)
		_ = l.b.SetReadDeadline(past)
		l.hold(l.a, l.b)
	}
}

// hold keeps sockets open until the proxy closes.
func (l *link) hold(cs ...net.Conn) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if l.p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return
	}
	l.p.held = append(l.p.held, cs...)
}

func (l *link) closeBoth() {
	_ = l.a.Close()
	_ = l.b.Close()
}

func (l *link) pipeDone() {
	l.mu.Lock()
	l.done++
	last := l.done == 2
	l.mu.Unlock()
	if last {
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	}
	l.p.wg.Done()
}
