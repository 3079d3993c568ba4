package listener

import (
	"bufio"
	"errors"
	"io"
	"net"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/dualgate/dualgate/sniff"
)

// serveConn is the goroutine that classifies one accepted socket and hands
// it to its kind's listener. It owns the socket until then.
func (l *Listener) serveConn(raw net.Conn) {
	defer l.wg.Done()
	c := &Conn{Conn: raw, l: l, remote: raw.RemoteAddr()}
	c.peeked = c.buf[:0]
	c.client = addrPortOf(c.remote)
	c.remote = net.TCPAddrFromAddrPort(c.client)

	reason, err := l.classify(c)
	<-l.sem // the slot is for classifying; waiting for Accept does not hold it
	if reason != "" {
		l.reject(c, reason, err)
		return
	}
	kl := l.kinds[c.kind]
	if !kl.enabled {
		l.reject(c, ReasonKindDisabled, nil)
		return
	}
	if kl.isClosed() {
		l.reject(c, ReasonKindClosed, nil)
		return
	}
	switch {
	case !c.ambiguous:
		l.m.classified.Inc()
	case c.kind == sniff.KindTLS:
		l.m.viaCache.Inc()
	default:
		l.m.toPlain.Inc()
	}
	l.m.connsByKind[c.kind].Inc()
	select {
	case kl.ch <- c:
	case <-kl.done:
		_ = c.Close()
	case <-l.done:
		_ = c.Close()
	}
}

func (l *Listener) reject(c *Conn, reason string, err error) {
	l.count(reason) // before Close: whoever sees the close sees the count
	_ = c.Close()
	log := l.opts.Logger.Info
	switch reason {
	case ReasonClosedEarly, ReasonListenerClosed, ReasonSniffTimeout, ReasonReadError:
		log = l.opts.Logger.Debug
	case ReasonMaxConnsPerIP:
		log = l.opts.Logger.Warn
	}
	args := []any{"reason", reason, "client", c.client, "layer", l.opts.MetricsLayer}
	if err != nil {
		args = append(args, "err", err)
	}
	log("listener: connection rejected", args...)
}

// classify reads the optional PROXY header and the first bytes of c within
// the sniff deadline and sets c.kind, or returns a rejection reason.
func (l *Listener) classify(c *Conn) (reason string, err error) {
	if !l.trackSniffing(c) {
		return ReasonListenerClosed, nil
	}
	defer l.untrackSniffing(c)
	_ = c.Conn.SetReadDeadline(time.Now().Add(l.opts.SniffTimeout))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()

	if l.trusted(c) {
		if reason, err := l.readProxyHeader(c); reason != "" {
			return reason, err
		}
	}
	if !l.acquireIP(c.client.Addr()) {
		return ReasonMaxConnsPerIP, nil
	}
	c.ipCounted = true

	for {
		kind, err := sniff.Classify(c.peeked)
		if err == nil {
			c.kind = kind
			return "", nil
		}
		if r, ok := sniff.RejectReason(err); ok {
			return string(r), err
		}
		// ErrNeedMore: read at most up to MaxPrefixLen, where Classify decides.
		n, rerr := c.Conn.Read(c.peeked[len(c.peeked):cap(c.peeked)])
		c.peeked = c.peeked[:len(c.peeked)+n]
		if rerr == nil || n > 0 {
			continue
		}
		return l.readFailed(c, rerr)
	}
}

// readFailed turns a read error while classifying into the ambiguous
// fallback or a rejection reason.
func (l *Listener) readFailed(c *Conn, err error) (string, error) {
	var ne net.Error
	switch {
	case l.closing():
		return ReasonListenerClosed, nil
	case errors.As(err, &ne) && ne.Timeout() && len(c.peeked) == 0:
		c.ambiguous = true
		c.kind = sniff.KindHTTP
		if l.kinds[sniff.KindTLS].enabled && l.opts.IPCache != nil && l.opts.IPCache.Contains(c.client.Addr()) {
			c.kind = sniff.KindTLS
		}
		return "", nil
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonSniffTimeout, err
	case errors.Is(err, io.EOF):
		return ReasonClosedEarly, nil
	default:
		return ReasonReadError, err
	}
}

func (l *Listener) trusted(c *Conn) bool {
	ip := c.client.Addr()
	for _, p := range l.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readProxyHeader reads an optional PROXY header from a trusted peer and
// moves the bytes buffered behind it into c.peeked.
func (l *Listener) readProxyHeader(c *Conn) (string, error) {
	br := bufio.NewReaderSize(c.Conn, 256)
	hdr, err := proxyproto.Read(br)
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		if n > cap(c.peeked) {
			c.peeked = make([]byte, 0, n)
		}
		c.peeked = append(c.peeked[:0], rest...)
	}
	switch {
	case err == nil:
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return "", nil // optional for trusted peers; EOF shows up when classifying
	case hdrTimeout(err) && len(c.peeked) == 0:
		return "", nil // silent: the ambiguous fallback applies
	default:
		return ReasonInvalidProxyHeader, err
	}
	if hdr.Command.IsProxy() {
		if src, ok := hdr.SourceAddr.(*net.TCPAddr); ok {
			c.client = addrPortOf(src)
			c.remote = net.TCPAddrFromAddrPort(c.client)
			c.proxied = true
		}
	}
	return "", nil
}

func hdrTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (l *Listener) trackSniffing(c *Conn) bool {
	l.sniffing.mu.Lock()
	defer l.sniffing.mu.Unlock()
	if l.sniffing.closed {
		return false
	}
	l.sniffing.m[c] = struct{}{}
	return true
}

func (l *Listener) untrackSniffing(c *Conn) {
	l.sniffing.mu.Lock()
	defer l.sniffing.mu.Unlock()
	delete(l.sniffing.m, c)
}
