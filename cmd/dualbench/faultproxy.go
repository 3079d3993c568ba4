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
// transport connects and when its first DATA message arrives from the
// gateway. The stall before a kill is dualbench's own (faultproxy's Discard
// would also drop the client's bytes and count nothing): the session dials
// through dial, and a stalled connection reads and throws away what the
// gateway sends. It is safe for concurrent use.
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

// tap watches the WebSocket messages the gateway sends on a new link until
// its first DATA message.
func (p *faultProxy) tap(info faultproxy.LinkInfo) faultproxy.TapFunc {
	p.mu.Lock()
	p.lastID = max(p.lastID, info.ID)
	if p.m.armed {
		p.m.attempts++
	}
	p.mu.Unlock()
	done := false
	var helloAt time.Time
	w := newWSWatcher(func(index, length int) {
		if index == 1 {
			helloAt = time.Now()
		}
		if done || index < 2 || length < minDataMessage {
			return // the server hello, or ACK/PING/PONG
		}
		// A link's first DATA is all there is to see: a later kill drops
		// this link, so only a newer one can be measured.
		done = true
		now := time.Now()
		p.mu.Lock()
		var s resumeSample
		// Only a transport accepted after the kill counts: a killed one may
		// still be handing over bytes it read before it was closed.
		report := p.m.armed && info.ID > p.m.killID
		if report {
			s = resumeSample{DialToData: now.Sub(info.Accepted), KillToData: now.Sub(p.m.killedAt), Attempts: p.m.attempts,
				DialToHello: helloAt.Sub(info.Accepted), HelloToData: now.Sub(helloAt)}
			p.m.armed = false
		}
		p.mu.Unlock()
		if report && p.onSample != nil {
			p.onSample(s)
		}
	})
	return func(d faultproxy.Direction, b []byte) bool {
		if d != faultproxy.ToClient {
			return false
		}
		// Not a WebSocket stream we understand, or the first DATA seen:
		// stop watching; the link keeps relaying.
		return w.feed(b) == nil && !done
	}
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
