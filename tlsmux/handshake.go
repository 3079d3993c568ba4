package tlsmux

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

// handshaker is a net.Listener whose Accept returns *tls.Conn values that
// completed their handshake. It is the inner listener of the re-sniffing
// listener.Listener.
type handshaker struct {
	inner net.Listener // the sniffing listener's TLS kind
	cfg   *tls.Config
	opts  *Options
	m     *metrics

	ch  chan *tls.Conn
	sem chan struct{}

	done      chan struct{}
	closeOnce sync.Once
	stopped   chan struct{}
	stopOnce  sync.Once
	stopErr   error
	wg        sync.WaitGroup

	inFlight struct {
		mu     sync.Mutex
		closed bool
		m      map[net.Conn]struct{}
	}
}

func newHandshaker(inner net.Listener, cfg *tls.Config, opts *Options) *handshaker {
	h := &handshaker{
		inner:   inner,
		cfg:     cfg,
		opts:    opts,
		ch:      make(chan *tls.Conn, opts.Backlog),
		sem:     make(chan struct{}, opts.MaxHandshakes),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	h.inFlight.m = make(map[net.Conn]struct{})
	h.m = newMetrics(opts.Registerer, opts.Logger, func() float64 { return float64(h.handshaking()) })
	h.wg.Add(1)
	go h.acceptLoop()
	return h
}

func (h *handshaker) Accept() (net.Conn, error) {
	select {
	case <-h.stopped:
		return nil, h.stopErr
	default:
	}
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.stopped:
		return nil, h.stopErr
	}
}

func (h *handshaker) Addr() net.Addr { return h.inner.Addr() }

// Close closes the inner listener and every handshake in progress, and waits
// for the handshake goroutines. Completed connections never accepted are
// closed. Close is idempotent.
func (h *handshaker) Close() error {
	var err error
	h.closeOnce.Do(func() {
		close(h.done)
		h.stop(net.ErrClosed)
		err = h.inner.Close()
		h.inFlight.mu.Lock()
		h.inFlight.closed = true
		for c := range h.inFlight.m {
			_ = c.Close()
		}
		h.inFlight.mu.Unlock()
		h.wg.Wait()
		for {
			select {
			case c := <-h.ch:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return err
}

func (h *handshaker) stop(err error) {
	h.stopOnce.Do(func() {
		h.stopErr = err
		close(h.stopped)
	})
}

// acceptLoop is the goroutine that accepts TLS-kind connections until Close.
func (h *handshaker) acceptLoop() {
	defer h.wg.Done()
	var delay time.Duration
	for {
		select {
		case h.sem <- struct{}{}:
		case <-h.done:
			return
		}
		raw, err := h.inner.Accept()
		if err != nil {
			<-h.sem
			select {
			case <-h.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				h.stop(fmt.Errorf("tlsmux: TLS listener: %w", err))
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			h.opts.Logger.Warn("tlsmux: accept error; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-h.done:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		h.wg.Add(1)
		go h.handshake(raw)
	}
}

// handshaking returns the number of handshakes in progress.
func (h *handshaker) handshaking() int {
	h.inFlight.mu.Lock()
	defer h.inFlight.mu.Unlock()
	return len(h.inFlight.m)
}

func (h *handshaker) track(c net.Conn, add bool) bool {
	h.inFlight.mu.Lock()
	defer h.inFlight.mu.Unlock()
	if !add {
		delete(h.inFlight.m, c)
		return true
	}
	if h.inFlight.closed {
		return false
	}
	h.inFlight.m[c] = struct{}{}
	return true
}

// handshake is the goroutine that runs one TLS handshake and queues the
// connection for Accept.
func (h *handshaker) handshake(raw net.Conn) {
	defer h.wg.Done()
	ok := h.track(raw, true)
	if !ok {
		<-h.sem
		_ = raw.Close()
		return
	}
	client := listener.ClientAddr(raw)
	tc := tls.Server(newReadAhead(raw), h.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	h.track(raw, false)
	<-h.sem
	if err != nil {
		reason := failureReason(err)
		h.m.failures.WithLabelValues(reason).Inc() // before Close: whoever sees the close sees the count
		h.opts.Logger.Debug("tlsmux: handshake failed", "reason", reason, "client", client, "err", err)
		answerPlainHTTP(err)
		_ = raw.Close()
		return
	}
	st := tc.ConnectionState()
	h.m.handshakes.WithLabelValues(tls.VersionName(st.Version), st.NegotiatedProtocol).Inc()
	if h.opts.IPCache != nil {
		h.opts.IPCache.Add(client.Addr())
	}
	if st.NegotiatedProtocol == ALPNACMETLS {
		// The certificate was the TLS-ALPN-01 answer; nothing follows.
		h.opts.Logger.Debug("tlsmux: acme-tls/1 handshake done; closing", "client", client)
		_ = tc.Close()
		return
	}
	select {
	case h.ch <- tc:
	case <-h.done:
		_ = tc.Close()
	}
}

// answerPlainHTTP answers a plain HTTP request that reached the TLS server
// (a slow ws:// client sent to TLS by the ambiguous fallback) the way
// net/http does, so that its user sees why instead of a reset.
func answerPlainHTTP(err error) {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.Conn == nil {
		return
	}
	if k, cerr := sniff.Classify(rhe.RecordHeader[:]); cerr != nil || k != sniff.KindHTTP {
		return
	}
	_ = rhe.Conn.SetWriteDeadline(time.Now().Add(plainAnswerTimeout))
	_, _ = io.WriteString(rhe.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
}

// plainAnswerTimeout bounds writing the answer of answerPlainHTTP.
const plainAnswerTimeout = time.Second
