package main

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// faultProxy puts one session's transports through an
// internal/faultproxy.Proxy in front of the gateway, so kill can drop the
// transport, and measures resumes on the wire: its Tap sees when the next
// transport connects, its upgrade and handshake messages in both directions,
// and when its first DATA message arrives from the gateway. The stall before
// a kill is dualbench's own (faultproxy's Discard would also drop the
// client's bytes and count nothing): the session dials through dial, and a
// stalled connection reads and throws away what the gateway sends. It is
// safe for concurrent use.
type faultProxy struct {
	*faultproxy.Proxy

	dropped  atomic.Int64 // gateway → client bytes dropped by stallThenKill
	onSample func(resumeSample)

	mu     sync.Mutex
	m      measurement
	lastID uint64                  // highest link ID the Tap has seen
	conns  map[*stallConn]struct{} // open connections made by dial
}

// measurement is the state of the resume being measured.
type measurement struct {
	seq      uint64    // counts kills, so a failed kill can undo its own arming
	armed    bool      // measure the next transport that delivers DATA
	killedAt time.Time // when armed
	attempts int       // transports accepted since the kill
	killID   uint64    // highest link ID at the kill: later links are new transports
}

// resumeSample is one measured resume, seen on the wire.
type resumeSample struct {
	DialToData time.Duration // new transport accepted → first DATA from the gateway on it
	KillToData time.Duration // kill → first DATA on the new transport (includes detection and back-off)
	Attempts   int           // transports accepted after the kill, including the successful one
	// DialToData split at the server hello: the upgrade and the gateway's
	// half of the handshake, then the client's CONFIRM and the replay.
	DialToHello, HelloToData time.Duration
	// Gateway is the gateway's own part of DialToData (resumeTimes.split)
	// and ClientProxy the rest; Exchanges are Gateway's three parts
	// (upgrade, hello, CONFIRM → DATA). All are valid only if Attributed.
	Gateway, ClientProxy time.Duration
	Exchanges            [3]time.Duration
	Attributed           bool
}

// resumeTimes are the instants of one new transport as the fault proxy sees
// them: each is when the chunk carrying the byte passed the proxy (a
// client → gateway chunk just before the proxy writes it to the gateway, a
// gateway → client chunk just after the proxy read it). A message ends with
// its last byte.
type resumeTimes struct {
	accepted         time.Time // the proxy accepted the TCP connection (before dialling the gateway)
	requestEnd       time.Time // end of the client's upgrade request (GET)
	responseStart    time.Time // first byte of the gateway's 101 response
	clientHelloEnd   time.Time // end of the client's first WebSocket message
	serverHelloStart time.Time // first byte of the gateway's first WebSocket message
	serverHelloEnd   time.Time
	confirmEnd       time.Time // end of the client's second message (CONFIRM)
	dataStart        time.Time // first byte of the gateway's first DATA message
	dataEnd          time.Time // its last byte: where DialToData ends
}

// split divides dataEnd − accepted into the gateway's own time, from the end
// of each client message to the first byte of the gateway's answer —
// (request → 101) + (client hello → server hello) + (CONFIRM → first DATA) —
// and the rest: the client, the proxy and the loopback hops in between. Both
// include the hops between the proxy and the gateway (the gateway's part
// two per exchange). ok is false when an instant is missing or they are out
// of order, so that the parts would not add up, or the gateway's part is 0.
func (t *resumeTimes) split() (gateway, rest time.Duration, ok bool) {
	ex, ok := t.exchanges()
	if !ok {
		return 0, 0, false
	}
	gateway = ex[0] + ex[1] + ex[2]
	return gateway, t.dataEnd.Sub(t.accepted) - gateway, gateway > 0
}

// exchanges returns the gateway's part of each exchange: request → 101,
// client hello → server hello, CONFIRM → first DATA; ok as for split.
func (t *resumeTimes) exchanges() (ex [3]time.Duration, ok bool) {
	chain := [...]time.Time{t.accepted, t.requestEnd, t.responseStart, t.clientHelloEnd,
		t.serverHelloStart, t.confirmEnd, t.dataStart, t.dataEnd}
	for i, x := range chain {
		if x.IsZero() || i > 0 && x.Before(chain[i-1]) {
			return ex, false
		}
	}
	return [3]time.Duration{t.responseStart.Sub(t.requestEnd), t.serverHelloStart.Sub(t.clientHelloEnd), t.dataStart.Sub(t.confirmEnd)}, true
}

// startFaultProxy listens on a fresh loopback port and forwards every
// connection to target. onSample receives each measured resume.
func startFaultProxy(target string, onSample func(resumeSample)) (*faultProxy, error) {
	p := &faultProxy{onSample: onSample, conns: map[*stallConn]struct{}{}}
	fp, err := faultproxy.New(target, &faultproxy.Options{Tap: p.tap})
	if err != nil {
		return nil, err
	}
	p.Proxy = fp
	return p, nil
}

// addr returns the address clients dial instead of the gateway.
func (p *faultProxy) addr() string { return p.Addr() }

// tap watches a new link in both directions until the gateway's first DATA
// message on it.
func (p *faultProxy) tap(info faultproxy.LinkInfo) faultproxy.TapFunc {
	p.mu.Lock()
	p.lastID = max(p.lastID, info.ID)
	if p.m.armed {
		p.m.attempts++
	}
	p.mu.Unlock()
	l := &linkWatch{p: p, id: info.ID, t: resumeTimes{accepted: info.Accepted}}
	l.toClient = newWSWatcher(false, l.fromGateway)
	l.toGateway = newWSWatcher(true, l.fromClient)
	return l.observe
}

// linkWatch follows one link of a fault proxy: the gateway's messages up to
// the first DATA, and the client's up to CONFIRM. It is safe for concurrent
// use (the two directions call observe concurrently).
type linkWatch struct {
	p  *faultProxy
	id uint64

	mu                  sync.Mutex
	toClient, toGateway *wsWatcher
	t                   resumeTimes
	confirmed           bool          // CONFIRM seen: stop watching the client
	done                bool          // first DATA seen: stop watching the gateway
	sample              *resumeSample // to report once the lock is released
}

// observe is the link's faultproxy.TapFunc. A stream that is not a
// WebSocket stream the watcher understands is no longer watched; the link
// keeps relaying.
func (l *linkWatch) observe(d faultproxy.Direction, b []byte) bool {
	now := time.Now()
	l.mu.Lock()
	var more bool
	if d == faultproxy.ToClient {
		more = l.toClient.feed(b, now) == nil && !l.done
	} else {
		more = l.toGateway.feed(b, now) == nil && !l.confirmed
	}
	s := l.sample
	l.sample = nil
	l.mu.Unlock()
	if s != nil && l.p.onSample != nil {
		l.p.onSample(*s)
	}
	return more
}

// fromClient records the client's upgrade request, hello and CONFIRM. The
// caller holds l.mu.
func (l *linkWatch) fromClient(m wsMessage) {
	switch m.index {
	case 0:
		l.t.requestEnd = m.end
	case 1:
		l.t.clientHelloEnd = m.end
	case 2:
		l.t.confirmEnd = m.end
		l.confirmed = true
	}
}

// fromGateway records the gateway's 101 response and server hello, and
// measures the resume at its first DATA message. The caller holds l.mu.
func (l *linkWatch) fromGateway(m wsMessage) {
	switch {
	case m.index == 0:
		l.t.responseStart = m.start
		return
	case m.index == 1:
		l.t.serverHelloStart, l.t.serverHelloEnd = m.start, m.end
		return
	case l.done || m.length < minDataMessage:
		return // ACK/PING/PONG
	}
	// A link's first DATA is all there is to see: a later kill drops this
	// link, so only a newer one can be measured.
	l.done = true
	l.t.dataStart, l.t.dataEnd = m.start, m.end
	t := &l.t
	p := l.p
	p.mu.Lock()
	defer p.mu.Unlock()
	// Only a transport accepted after the kill counts: a killed one may
	// still be handing over bytes it read before it was closed.
	if !p.m.armed || l.id <= p.m.killID {
		return
	}
	s := &resumeSample{DialToData: t.dataEnd.Sub(t.accepted), KillToData: t.dataEnd.Sub(p.m.killedAt), Attempts: p.m.attempts,
		DialToHello: t.serverHelloEnd.Sub(t.accepted), HelloToData: t.dataEnd.Sub(t.serverHelloEnd)}
	s.Gateway, s.ClientProxy, s.Attributed = t.split()
	s.Exchanges, _ = t.exchanges()
	p.m.armed = false
	l.sample = s
}

// stallThenKill first throws away what the gateway sends on every live
// transport for d (those bytes are lost, so the gateway holds
// unacknowledged data and the first DATA after the resume is a
// retransmission), then kills them like kill.
func (p *faultProxy) stallThenKill(d time.Duration, rst bool) bool {
	if d > 0 {
		p.mu.Lock()
		for c := range p.conns {
			c.stalled.Store(true)
		}
		p.mu.Unlock()
		time.Sleep(d)
	}
	return p.kill(rst)
}

// kill drops (rst: resets) every live transport of the session and arms
// the measurement of the next one. It reports whether there was a
// transport to drop.
func (p *faultProxy) kill(rst bool) bool {
	f := faultproxy.Drop
	if rst {
		f = faultproxy.Reset
	}
	// Armed before the strike: the client may redial as soon as it sees it.
	p.mu.Lock()
	prev := p.m
	p.m = measurement{seq: prev.seq + 1, armed: true, killedAt: time.Now(), killID: p.lastID}
	seq := p.m.seq
	p.mu.Unlock()
	if p.Strike(f) > 0 {
		return true
	}
	p.mu.Lock()
	if p.m.seq == seq {
		prev.seq = seq
		p.m = prev // nothing was dropped: nothing to measure
	}
	p.mu.Unlock()
	return false
}

// pending reports whether a kill has not been followed by DATA yet.
func (p *faultProxy) pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.armed
}

// dial opens a connection to the proxy (addr) that stallThenKill can
// stall; it is the session's resume.DialOptions.DialContext.
func (p *faultProxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	sc := &stallConn{Conn: c, p: p}
	p.mu.Lock()
	p.conns[sc] = struct{}{}
	p.mu.Unlock()
	return sc, nil
}

// stallConn is the client's end of one transport. Once stalled, it reads
// and throws away what the gateway sends until the connection fails (the
// kill that follows every stall).
type stallConn struct {
	net.Conn
	p       *faultProxy
	stalled atomic.Bool
}

func (c *stallConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if !c.stalled.Load() {
			return n, err
		}
		c.p.dropped.Add(int64(n)) // lost in transit: the gateway will have to retransmit them
		if err != nil {
			return 0, err
		}
	}
}

func (c *stallConn) Close() error {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return c.Conn.Close()
}
