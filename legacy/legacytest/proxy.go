package legacytest

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// Fault is what Proxy does to a link when its byte budget runs out. See
// internal/faultproxy for the details of each kind.
type Fault = faultproxy.Fault

const (
	// Drop closes both sides of the link (FIN).
	Drop = faultproxy.Drop
	// Reset aborts both sides (RST, via SO_LINGER 0).
	Reset = faultproxy.Reset
	// HalfOpen closes the client side but keeps the server side open and
	// silent: the server sees nothing, its reads hang and, once the socket
	// buffers fill, so do its writes.
	HalfOpen = faultproxy.HalfOpen
	// Blackhole stops forwarding both ways and keeps both sides open; only
	// a timeout can tell either end.
	Blackhole = faultproxy.Blackhole
)

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
	fp *faultproxy.Proxy

	min, max int
	faults   []Fault

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// New listens on 127.0.0.1 and forwards every connection to target.
func New(target string, opts *Options) (*Proxy, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	p := &Proxy{min: o.MinBytes, max: max(o.MaxBytes, o.MinBytes), faults: o.Faults}
	if len(p.faults) == 0 {
		p.faults = []Fault{Drop, Reset, HalfOpen, Blackhole}
	}
	p.rng = rand.New(rand.NewPCG(o.Seed, 0x1e9ac7))
	fp, err := faultproxy.New(target, &faultproxy.Options{
		BufferSize:   16 << 10,
		SocketBuffer: o.SocketBuffer,
		Rand:         rand.New(rand.NewPCG(o.Seed, 0x5eed)),
	})
	if err != nil {
		return nil, fmt.Errorf("legacytest: %w", err)
	}
	p.fp = fp
	return p, nil
}

// Addr returns the proxy's listening address.
func (p *Proxy) Addr() string { return p.fp.Addr() }

// SetChaos turns fault injection on or off. Links draw their budget when
// chaos is first on while they forward.
func (p *Proxy) SetChaos(on bool) {
	if !on || p.max <= 0 {
		p.fp.SetBudget(nil)
		return
	}
	p.fp.SetBudget(p.draw)
}

// draw picks a link's budget and fault.
func (p *Proxy) draw() faultproxy.Budget {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.min + p.rng.IntN(p.max-p.min+1)
	return faultproxy.TotalBudget(int64(n), p.faults[p.rng.IntN(len(p.faults))])
}

// Counts returns how many faults of each kind were injected.
func (p *Proxy) Counts() map[Fault]int {
	m := make(map[Fault]int)
	for f, n := range p.fp.Stats().Faults {
		m[f] = int(n)
	}
	return m
}

// Strike injects fault f into every live link now.
func (p *Proxy) Strike(f Fault) int { return p.fp.Strike(f) }

// Close stops the proxy, closes every socket and waits for its goroutines.
func (p *Proxy) Close() error { return p.fp.Close() }
