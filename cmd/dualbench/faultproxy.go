package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// faultProxy is a loopback TCP proxy in front of the gateway for one
// session: every transport of the session passes through it, so kill can
// drop the transport, and the proxy sees when the next transport connects
// and when its first DATA message arrives from the gateway. It is safe for
// concurrent use.
type faultProxy struct {
	ln     net.Listener
	target string

	accepted atomic.Int64 // transports so far
	kills    atomic.Int64
	dropped  atomic.Int64 // gateway → client bytes dropped by stallThenKill

	mu       sync.Mutex
	pairs    map[*proxyPair]struct{}
	armed    bool      // measure the next transport that delivers DATA
	killedAt time.Time // when armed
	attempts int       // transports accepted since the kill
	gen      uint64    // transports accepted so far (numbers pairs)
	killGen  uint64    // gen at the last kill: later pairs are new transports
	onSample func(resumeSample)
	closed   bool

	wg sync.WaitGroup
}

// proxyPair is one proxied transport.
type proxyPair struct {
	client, server net.Conn
	acceptedAt     time.Time
	gen            uint64
	blackhole      atomic.Bool // drop gateway → client bytes instead of forwarding them
}

// resumeSample is one measured resume, seen on the wire.
type resumeSample struct {
	DialToData time.Duration // new transport accepted → first DATA from the gateway on it
	KillToData time.Duration // kill → first DATA on the new transport (includes detection and back-off)
	Attempts   int           // transports accepted after the kill, including the successful one
}

// startFaultProxy listens on a fresh loopback port and forwards every
// connection to target. onSample receives each measured resume.
func startFaultProxy(target string, onSample func(resumeSample)) (*faultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{ln: ln, target: target, pairs: map[*proxyPair]struct{}{}, onSample: onSample}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// addr returns the address clients dial instead of the gateway.
func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		p.accepted.Add(1)
		s, err := net.DialTimeout("tcp", p.target, 10*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s, acceptedAt: now}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.gen++
		pair.gen = p.gen
		p.pairs[pair] = struct{}{}
		if p.armed {
			p.attempts++
		}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.upstream(pair)
		go p.downstream(pair)
	}
}

// upstream copies client → gateway.
func (p *faultProxy) upstream(pair *proxyPair) {
	defer p.wg.Done()
	io.Copy(pair.server, pair.client) //nolint:errcheck // ends with either side
	p.drop(pair, false)
}

// downstream copies gateway → client and watches the WebSocket messages.
func (p *faultProxy) downstream(pair *proxyPair) {
	defer p.wg.Done()
	w := newWSWatcher(func(index, length int) {
		if index < 2 || length < minDataMessage {
			return // the server hello, or ACK/PING/PONG
		}
		now := time.Now()
		p.mu.Lock()
		var s resumeSample
		// Only a transport accepted after the kill counts: a killed one may
		// still be handing over bytes it read before it was closed.
		report := p.armed && pair.gen > p.killGen
		if report {
			s = resumeSample{DialToData: now.Sub(pair.acceptedAt), KillToData: now.Sub(p.killedAt), Attempts: p.attempts}
			p.armed = false
		}
		cb := p.onSample
		p.mu.Unlock()
		if report && cb != nil {
			cb(s)
		}
	})
	buf := make([]byte, 64<<10)
	watching := true
	for {
		n, err := pair.server.Read(buf)
		if n > 0 && pair.blackhole.Load() {
			p.dropped.Add(int64(n))
			continue // lost in transit: the gateway will have to retransmit them
		}
		if n > 0 {
			if watching && w.feed(buf[:n]) != nil {
				watching = false // not a WebSocket stream we understand; keep proxying
			}
			if _, werr := pair.client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.drop(pair, false)
}

// drop closes a pair (with RST when rst is set) and forgets it.
func (p *faultProxy) drop(pair *proxyPair, rst bool) {
	if rst {
		for _, c := range []net.Conn{pair.client, pair.server} {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) //nolint:errcheck // best effort: a FIN is fine too
			}
		}
	}
	pair.client.Close()
	pair.server.Close()
	p.mu.Lock()
	delete(p.pairs, pair)
	p.mu.Unlock()
}

// stallThenKill first stops forwarding what the gateway sends on every live
// transport for d (those bytes are lost, so the gateway holds unacknowledged
// data and the first DATA after the resume is a retransmission), then
// kills them like kill.
func (p *faultProxy) stallThenKill(d time.Duration, rst bool) bool {
	if d > 0 {
		p.mu.Lock()
		for pair := range p.pairs {
			pair.blackhole.Store(true)
		}
		p.mu.Unlock()
		time.Sleep(d)
	}
	return p.kill(rst)
}

// kill drops every live transport of the session and arms the measurement
// of the next one. It reports whether there was a transport to drop.
func (p *faultProxy) kill(rst bool) bool {
	p.mu.Lock()
	pairs := make([]*proxyPair, 0, len(p.pairs))
	for pair := range p.pairs {
		pairs = append(pairs, pair)
	}
	if len(pairs) > 0 {
		p.armed, p.killedAt, p.attempts, p.killGen = true, time.Now(), 0, p.gen
	}
	p.mu.Unlock()
	for _, pair := range pairs {
		p.drop(pair, rst)
	}
	if len(pairs) > 0 {
		p.kills.Add(1)
	}
	return len(pairs) > 0
}

// pending reports whether a kill has not been followed by DATA yet.
func (p *faultProxy) pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.armed
}

// Close stops the proxy, drops every transport and waits.
func (p *faultProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	pairs := make([]*proxyPair, 0, len(p.pairs))
	for pair := range p.pairs {
		pairs = append(pairs, pair)
	}
	p.mu.Unlock()
	for _, pair := range pairs {
		p.drop(pair, false)
	}
	p.wg.Wait()
	return err
}
