package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualgate/dualgate/sniff"
)

// Listener is the sniffing listener. Create it with New; the zero value is
// not usable. It is safe for concurrent use.
type Listener struct {
	inner net.Listener
	opts  Options
	m     *metrics

	kinds [sniff.NumKinds]*kindListener
	sem   chan struct{} // one token per connection being classified
	open  atomic.Int64  // connections counted against MaxConns

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	stopped   chan struct{} // closed when no connection will be handed out any more
	stopOnce  sync.Once
	stopErr   error // why, for Accept; written before stopped is closed
	wg        sync.WaitGroup

	perIP struct {
		mu sync.Mutex
		m  map[netip.Addr]int
	}
	sniffing struct {
		mu     sync.Mutex
		closed bool
		m      map[*Conn]struct{}
	}
}

// New returns a Listener that accepts from inner, which it owns from now on,
// and starts its accept loop. Call Close to stop it.
func New(inner net.Listener, opts *Options) *Listener {
	l := &Listener{
		inner:   inner,
		opts:    opts.cloneWithDefaults(),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	l.sem = make(chan struct{}, l.opts.MaxSniffing)
	l.perIP.m = make(map[netip.Addr]int)
	l.sniffing.m = make(map[*Conn]struct{})
	for k := range l.kinds {
		l.kinds[k] = &kindListener{l: l, kind: sniff.Kind(k), done: make(chan struct{})}
	}
	for _, k := range l.opts.Kinds {
		if k != sniff.KindUnknown && int(k) < sniff.NumKinds {
			l.kinds[k].enabled = true
			l.kinds[k].ch = make(chan *Conn, l.opts.Backlog)
		}
	}
	l.m = newMetrics(l)
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// For returns the listener of the connections classified as k. Its Accept
// returns *Conn values. For a kind not listed in Options.Kinds it returns a
// listener whose Accept fails at once. Closing the returned listener stops
// handing out that kind (later connections of the kind are closed); it does
// not close l.
func (l *Listener) For(k sniff.Kind) net.Listener {
	if int(k) >= len(l.kinds) {
		k = sniff.KindUnknown
	}
	return l.kinds[k]
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener and every connection still being
// classified, unblocks every Accept of the per-kind listeners, and waits
// for the listener's goroutines. Connections already handed out stay open:
// they belong to whoever accepted them. Close is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.stop(net.ErrClosed)
		l.closeErr = l.inner.Close()
		l.sniffing.mu.Lock()
		l.sniffing.closed = true
		for c := range l.sniffing.m {
			_ = c.Conn.Close() // the sniff goroutine rejects and accounts it
		}
		l.sniffing.mu.Unlock()
		l.wg.Wait()
		// Nobody sends any more: close what was queued but never accepted.
		for _, kl := range l.kinds {
			kl.drain()
		}
	})
	if errors.Is(l.closeErr, net.ErrClosed) {
		return nil
	}
	return l.closeErr
}

// stop makes every Accept return err (wrapped) from now on.
func (l *Listener) stop(err error) {
	l.stopOnce.Do(func() {
		l.stopErr = err
		close(l.stopped)
	})
}

func (l *Listener) closing() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// acceptLoop is the goroutine that accepts from inner until Close.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return
		}
		raw, err := l.inner.Accept()
		if err != nil {
			<-l.sem
			if l.closing() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				// Closed underneath us: nothing more will come.
				l.opts.Logger.Error("listener: inner listener closed", "err", err)
				l.stop(fmt.Errorf("listener: inner listener: %w", err))
				return
			}
			// Like http.Server.Serve: back off and retry (EMFILE and friends).
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.opts.Logger.Warn("listener: accept error; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		if max := l.opts.MaxConns; max > 0 && l.open.Load() >= int64(max) {
			<-l.sem
			l.count(ReasonMaxConns) // before Close: whoever sees the close sees the count
			_ = raw.Close()
			l.opts.Logger.Warn("listener: connection rejected", "reason", ReasonMaxConns, "peer", raw.RemoteAddr())
			continue
		}
		l.open.Add(1)
		l.wg.Add(1)
		go l.serveConn(raw)
	}
}

func (l *Listener) count(reason string) {
	l.m.rejectedOutcome.Inc()
	l.m.rejections.WithLabelValues(reason).Inc()
}

// acquireIP counts one more connection from ip; false if over the limit.
func (l *Listener) acquireIP(ip netip.Addr) bool {
	l.perIP.mu.Lock()
	defer l.perIP.mu.Unlock()
	if max := l.opts.MaxConnsPerIP; max > 0 && l.perIP.m[ip] >= max {
		return false
	}
	l.perIP.m[ip]++
	return true
}

func (l *Listener) releaseIP(ip netip.Addr) {
	l.perIP.mu.Lock()
	defer l.perIP.mu.Unlock()
	if n := l.perIP.m[ip]; n <= 1 {
		delete(l.perIP.m, ip) // memory stays bounded by open connections
	} else {
		l.perIP.m[ip] = n - 1
	}
}

// OpenConns returns the number of connections counted against MaxConns.
func (l *Listener) OpenConns() int { return int(l.open.Load()) }

// Sniffing returns the number of connections being classified.
func (l *Listener) Sniffing() int {
	l.sniffing.mu.Lock()
	defer l.sniffing.mu.Unlock()
	return len(l.sniffing.m)
}

// kindListener is the net.Listener of one kind.
type kindListener struct {
	l       *Listener
	kind    sniff.Kind
	enabled bool
	ch      chan *Conn
	done    chan struct{}
	once    sync.Once
}

func (kl *kindListener) Accept() (net.Conn, error) {
	if !kl.enabled {
		return nil, fmt.Errorf("listener: kind %s is not enabled: %w", kl.kind, net.ErrClosed)
	}
	for {
		select {
		case <-kl.done:
			return nil, net.ErrClosed
		case <-kl.l.stopped:
			return nil, kl.l.stopErr
		default:
		}
		select {
		case c := <-kl.ch:
			return c, nil
		case <-kl.done:
		case <-kl.l.stopped:
		}
	}
}

func (kl *kindListener) Close() error {
	kl.once.Do(func() { close(kl.done) })
	kl.drain() // a racing late arrival is closed by Listener.Close
	return nil
}

func (kl *kindListener) Addr() net.Addr { return kl.l.inner.Addr() }

func (kl *kindListener) drain() {
	for {
		select {
		case c := <-kl.ch:
			_ = c.Close()
		default:
			return
		}
	}
}

func (kl *kindListener) isClosed() bool {
	select {
	case <-kl.done:
		return true
	default:
		return false
	}
}
