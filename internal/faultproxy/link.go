package faultproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// linkState is where a link is in its life:
//
//	forwarding ──Discard──► discarding
//	    │                       │
//	    └──── close, or any ────┴──► done
//	          other fault
type linkState int

const (
	stateForwarding linkState = iota
	stateDiscarding
	stateDone
)

// Indexes of link.left.
const (
	leftTotal = iota
	leftUp
	leftDown
)

// link is one proxied connection: client is the side the proxy accepted,
// target the side it dialled.
type link struct {
	p              *Proxy
	info           LinkInfo
	client, target net.Conn
	tap            TapFunc

	mu    sync.Mutex // guards the fields below
	state linkState
	drawn bool     // the budget function was consulted
	left  [3]int64 // bytes left before the fault: total, up, down; < 0: no limit
	fault Fault    // what strikes when left runs out
}

// routineRelay forwards src to dst in direction d until either side
// closes or a fault ends the link. rng, when set, picks random chunk sizes.
func (l *link) routineRelay(d Direction, dst, src net.Conn, rng *rand.Rand) {
	defer l.p.wg.Done()
	buf := make([]byte, l.p.opts.BufferSize)
	tap := l.tap
	for {
		size := len(buf)
		if rng != nil {
			size = 1 + rng.IntN(len(buf))
		}
		n, err := src.Read(buf[:size])
		if n > 0 {
			k, strike, f := l.admit(d, n)
			if k > 0 {
				if tap != nil && !tap(d, buf[:k]) {
					tap = nil
				}
				if _, werr := dst.Write(buf[:k]); werr != nil {
					l.end()
					return
				}
			}
			if strike {
				l.strike(f)
			}
		}
		if err != nil {
			// A FIN or an error from one peer closes the whole link; after
			// a fault, this is our read failing on a socket the fault closed
			// or silenced, and end does nothing.
			l.end()
			return
		}
	}
}

// admit returns how many of n bytes read in direction d may be forwarded,
// and whether the link's fault f strikes after them. It draws the link's
// budget the first time a budget function is set.
func (l *link) admit(d Direction, n int) (k int, strike bool, f Fault) {
	l.mu.Lock()
	if !l.drawn && l.state == stateForwarding {
		if bf := l.p.budget.Load(); bf != nil {
			l.mu.Unlock()
			b := (*bf)() // outside the lock: it may call into the proxy
			if !b.Fault.valid() {
				b.Fault = Drop
			}
			l.mu.Lock()
			if !l.drawn {
				l.drawn = true
				l.left = [3]int64{b.Total, b.Up, b.Down}
				l.fault = b.Fault
			}
		}
	}
	defer l.mu.Unlock()
	if l.state != stateForwarding {
		return 0, false, 0 // discarding, or the link is gone
	}
	scopes := [2]int{leftTotal, leftUp}
	if d == ToClient {
		scopes[1] = leftDown
	}
	k = n
	for _, i := range scopes {
		if left := l.left[i]; left >= 0 && int64(k) > left {
			k, strike = int(left), true
		}
	}
	for _, i := range scopes {
		if l.left[i] >= 0 {
			l.left[i] -= int64(k)
		}
	}
	return k, strike, l.fault
}

// strike injects f and reports whether it did: a closed link, or a
// discarding one struck with Discard again, is left alone.
func (l *link) strike(f Fault) bool {
	l.mu.Lock()
	if l.state == stateDone || (f == Discard && l.state == stateDiscarding) {
		l.mu.Unlock()
		return false
	}
	if f == Discard {
		l.state = stateDiscarding
	} else {
		l.state = stateDone
	}
	l.mu.Unlock()
	// Counted and forgotten before a peer can see the fault, so that
	// Stats and WaitConns are up to date for whoever reacts to it.
	l.p.record(l, f)
	l.p.opts.Logger.Debug("faultproxy: fault", "fault", f.String(), "link", l.info.ID)
	past := time.Unix(1, 0)
	switch f {
	case Drop:
		l.closeBoth()
	case Reset:
		for _, c := range []net.Conn{l.client, l.target} {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
		l.closeBoth()
	case HalfOpen:
		_ = l.client.Close()
		_ = l.target.SetDeadline(past) // stops our relays; the socket stays open
		l.p.hold(l.target)
	case Blackhole:
		_ = l.client.SetDeadline(past)
		_ = l.target.SetDeadline(past)
		l.p.hold(l.client, l.target)
	case Discard:
		// The relays see the new state and drop what they read.
	}
	return true
}

// end closes a live (forwarding or discarding) link on both sides and
// forgets it; it does nothing once the link is done.
func (l *link) end() {
	l.mu.Lock()
	if l.state == stateDone {
		l.mu.Unlock()
		return
	}
	l.state = stateDone
	l.mu.Unlock()
	l.p.remove(l)
	l.closeBoth()
}

func (l *link) closeBoth() {
	_ = l.client.Close()
	_ = l.target.Close()
}
