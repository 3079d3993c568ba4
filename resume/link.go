package resume

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualgate/dualgate/internal/rawio"
)

// link is one transport attached to a session, with its Noise keys. Its
// flags are guarded by the session's mu. A link has no goroutine of its own
// while idle: its reader is the goroutine that serves the transport, and a
// flusher goroutine runs only while there is something to send.
type link struct {
	s *session
	t Transport
	// send is owned by the flusher, recv by the reader; each sheds its AEAD
	// state while quiet (an idle session holds none).
	send, recv sheddingCipher
	// plain: frames after CONFIRM go as they are, TLS protects them
	// (plain-in-TLS, docs/protocol.md §5.7).
	plain   bool
	counter uint64 // resume counter of its handshake (0 for the first)
	// parks: the reader waits in rawio's epoll set after a quiet second
	// and then sheds both ciphers (shedQuiet); a link that cannot park
	// sheds its sending cipher after flusher runs of control frames only.
	parks bool
	// ctx, when not nil, ends the link (the client's); cancel is called
	// when the link shuts. A server's link has neither: its transport is
	// closed by whoever ends it (the session, Close, StartTransport's ctx).
	ctx    context.Context
	cancel context.CancelFunc

	// guarded by s.mu
	flushing        bool
	confirm         bool // client: CONFIRM still to send
	pong            bool
	pongVal         uint64
	ping            bool
	ack             bool
	closeSent       bool
	gotAnswer       bool
	abortAfterClose bool
	closed          bool
	liveness        *time.Timer
	closer          *time.Timer

	wg       sync.WaitGroup // the flusher
	shutOnce sync.Once
	epoch    time.Time
	lastRecv atomic.Int64 // nanoseconds since epoch
	lastSend atomic.Int64
}

// newLink returns the link of transport t. ctx and cancel may be nil (see
// link.ctx).
func newLink(ctx context.Context, cancel context.CancelFunc, s *session, t Transport, res handshakeResult, counter uint64) *link {
	s.cfg.m.transport(res.plain)
	l := &link{s: s, t: t, send: newSheddingCipher(res.suite, res.send), recv: newSheddingCipher(res.suite, res.recv), plain: res.plain, counter: counter, ctx: ctx, cancel: cancel, epoch: time.Now()}
	if pt, ok := t.(pollTransport); ok && pt.canPoll() {
		_, l.parks = t.(parker)
	}
	return l
}

func (l *link) now() int64 { return int64(time.Since(l.epoch)) }

// start arms the liveness timer. The caller holds s.mu.
func (l *link) start() {
	n := l.now()
	l.lastRecv.Store(n)
	l.lastSend.Store(n)
	l.liveness = time.AfterFunc(l.s.cfg.ping, l.tick)
}

// tick implements liveness (docs/protocol.md §5.5): PING after an idle ping
// interval, and a transport silent for the dead-peer timeout is shut.
func (l *link) tick() {
	s := l.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.closed {
		return
	}
	now := l.now()
	silent := time.Duration(now - l.lastRecv.Load())
	if silent >= s.cfg.dead {
		l.closed = true
		go l.shut(CloseTransportDead, "dead peer")
		return
	}
	idle := time.Duration(now - l.lastSend.Load())
	next := s.cfg.ping - idle
	if idle >= s.cfg.ping {
		l.ping = true
		s.kickLocked()
		next = s.cfg.ping
	}
	next = min(next, s.cfg.dead-silent)
	l.liveness.Reset(max(next, 5*time.Millisecond))
}

// shut closes the transport once, which unblocks its reader and flusher.
func (l *link) shut(code CloseCode, reason string) {
	l.shutOnce.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
		l.t.Close(code, reason) //nolint:errcheck // nothing to do about it
	})
}

// shutAfter shuts the link after d unless it ends sooner. The caller holds s.mu.
func (l *link) shutAfter(d time.Duration, code CloseCode) {
	if l.closer == nil {
		l.closer = time.AfterFunc(d, func() { l.shut(code, "") })
	}
}

func (l *link) stopTimers() {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.liveness != nil {
		l.liveness.Stop()
	}
	if l.closer != nil {
		l.closer.Stop()
	}
}

// kickLocked starts the flusher of the attached link if it has work.
func (s *session) kickLocked() {
	l := s.link
	if l == nil || l.flushing || l.closed {
		return
	}
	if !(l.confirm || l.pong || l.ping || l.ack || (s.err == nil && s.sent < s.sq.end()) ||
		(s.localClose != nil && !l.closeSent)) {
		return
	}
	l.flushing = true
	l.wg.Add(1)
	go l.routineFlush()
}

// flushBufs are the plaintext and ciphertext buffers of a flusher run. A
// batchTransport gets all the sealed frames of a pass in ct at once.
type flushBufs struct{ pt, ct []byte }

var flushPool = sync.Pool{New: func() any {
	return &flushBufs{
		pt: make([]byte, 0, flushBytes+maxMessageLen),
		ct: make([]byte, 0, flushBytes+maxMessageLen+(frameBurst+8)*(wsMaxHeader+tagLen)),
	}
}}

// routineFlush seals and writes frames until the link has nothing to send.
// Only one runs per link (l.flushing), so it owns the sending CipherState.
func (l *link) routineFlush() {
	defer l.wg.Done()
	s := l.s
	bufs := flushPool.Get().(*flushBufs)
	defer flushPool.Put(bufs)
	var ends [frameBurst + 8]int
	sentData := false
	for {
		s.mu.Lock()
		buf, n, sentClose, final := s.collectLocked(l, bufs.pt[:0], ends[:0])
		bufs.pt = buf[:0]
		if n == 0 {
			if !sentData && !l.parks {
				// Only control frames (PING, PONG, ACK): the session is
				// quiet, so the cipher need not stay built. (Shedding
				// after DATA too would cost 4 % of CPU at 64-byte
				// messages: a rebuild per burst.) A parking link sheds
				// after its quiet second instead, which also spares a
				// one-way stream a rebuild per ACK.
				l.send.shed()
			}
			l.flushing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		data, err := l.writeFrames(bufs, buf, ends[:n])
		sentData = sentData || data
		if err != nil {
			s.mu.Lock()
			l.flushing = false
			l.closed = true
			s.mu.Unlock()
			l.shut(CloseTransportDead, "")
			return
		}
		l.lastSend.Store(l.now())
		if sentClose {
			s.mu.Lock()
			abort := l.abortAfterClose
			if final {
				s.finishLocked()
			}
			s.mu.Unlock()
			if abort {
				l.shut(CloseStatus(s.err), "")
			}
		}
	}
}

// writeFrames seals the plaintext frames in pt (frame i ends at ends[i])
// and writes them: with one write on a batchTransport, one message at a
// time otherwise. It reports whether there was DATA among them.
func (l *link) writeFrames(bufs *flushBufs, pt []byte, ends []int) (data bool, err error) {
	s := l.s
	// No context: shut closes the transport, which ends a blocked write,
	// and a context watched per write would allocate on the hot path.
	ctx := context.Background()
	bt, batch := l.t.(batchTransport)
	out := bufs.ct[:0]
	start := 0
	for _, end := range ends {
		f := pt[start:end]
		start = end
		if f[0] == frameData {
			data = true
			if s.cfg.m != nil {
				s.cfg.m.bytesOut.Add(float64(len(f) - dataHeaderLen))
			}
		}
		// CONFIRM is sealed in every frame mode: it proves the keys (§4.4).
		seal := !l.plain || f[0] == frameConfirm
		if !batch {
			out, err = l.encodeFrame(out[:0], f, seal)
			if err == nil {
				err = l.t.WriteMessage(ctx, out)
			}
			if err != nil {
				break
			}
			continue
		}
		n := len(f)
		if seal {
			n += tagLen
		}
		out = bt.beginMessage(out, n)
		mark := len(out)
		if out, err = l.encodeFrame(out, f, seal); err != nil {
			break
		}
		bt.endMessage(out[mark:])
	}
	if batch && err == nil {
		err = bt.writeBatch(ctx, out)
	}
	if cap(out) > cap(bufs.ct) {
		bufs.ct = out[:0]
	}
	return data, err
}

// encodeFrame appends the transport message of the plaintext frame f to
// dst: sealed, or f itself on a plain-in-TLS transport.
func (l *link) encodeFrame(dst, f []byte, seal bool) ([]byte, error) {
	if !seal {
		return append(dst, f...), nil
	}
	return sealFrame(l.send.state(), dst, f)
}

// collectLocked encodes up to frameBurst frames for l into buf; ends[i] is
// where frame i ends. It reports whether a CLOSE was among them and whether
// that CLOSE completed the close exchange.
func (s *session) collectLocked(l *link, buf []byte, ends []int) ([]byte, int, bool, bool) {
	if s.link != l || l.closed {
		return buf, 0, false, false
	}
	add := func(f *frame) {
		buf = appendFrame(buf, f)
		ends = append(ends, len(buf))
	}
	if l.confirm {
		add(&frame{typ: frameConfirm, num: s.rq.start})
		s.ackSent = s.rq.start
		l.confirm = false
	}
	if l.pong {
		add(&frame{typ: framePong, num: l.pongVal})
		l.pong = false
	}
	for s.err == nil && s.sent < s.sq.end() && len(ends) < frameBurst && len(buf) < flushBytes {
		// One frame: up to maxDataPayload bytes of one message, gathered
		// across queue blocks.
		n := min(s.sq.end()-s.sent, maxDataPayload)
		var flags byte
		text := s.sTailText
		if b, ok := s.smsgs.next(s.sent); ok {
			text = b.text
			if rem := b.end - s.sent; rem <= n {
				n = rem
				flags |= flagFIN
			}
		}
		if text {
			flags |= flagText
		}
		buf = appendFrame(buf, &frame{typ: frameData, flags: flags, num: s.sent, ack: s.rq.start})
		for off := s.sent; off < s.sent+n; {
			p := s.sq.peek(off, int(s.sent+n-off))
			buf = append(buf, p...)
			off += uint64(len(p))
		}
		ends = append(ends, len(buf))
		s.ackSent = s.rq.start
		l.ack = false
		s.sent += n
	}
	if l.ack {
		if s.rq.start > s.ackSent || len(ends) == 0 {
			add(&frame{typ: frameAck, num: s.rq.start})
			s.ackSent = s.rq.start
		}
		l.ack = false
	}
	if l.ping && len(ends) < frameBurst {
		add(&frame{typ: framePing, num: uint64(l.now())})
		l.ping = false
	}
	sentClose, final := false, false
	if s.localClose != nil && !l.closeSent && (s.sent == s.sq.end() || s.err != nil) && len(ends) < frameBurst+4 {
		add(&frame{typ: frameClose, num: s.sq.end(), code: s.localClose.Code, payload: []byte(s.localClose.Reason)})
		l.closeSent = true
		sentClose = true
		final = s.peerClose != nil
	}
	return buf, len(ends), sentClose, final
}

// readCtx is the context of routineRead's reads.
func (l *link) readCtx() context.Context {
	if l.ctx != nil {
		return l.ctx
	}
	return context.Background()
}

// routineRead reads and applies frames until the transport fails or the
// session's close exchange completes. It runs on the goroutine that serves
// the transport.
func (l *link) routineRead() error {
	defer releaseTransportBuffers(l.t)
	for {
		msg, err := l.t.ReadMessage(l.readCtx())
		if err != nil {
			return err
		}
		if err := l.handleMessage(msg); err != nil {
			return err
		}
	}
}

// serveReads reads the transport in the background until it fails or the
// session's close exchange completes, and then calls end with the error
// routineRead would return. A pollTransport is read by one goroutine at a
// time, which applies what arrived and waits for more (readAvailable: after
// a small burst on a fresh goroutine with a small stack). After a quiet
// second the waiting goroutine hands the wait to rawio's epoll set and
// ends, so an idle transport costs no goroutine; the epoll set starts the
// next reader when something arrives.
func (l *link) serveReads(end func(error)) {
	if pt, ok := l.t.(pollTransport); ok && pt.canPoll() {
		// The parked reads wait without a context (no registration per
		// wait); the link's context ending closes the transport instead,
		// which ends the wait.
		unwatch := func() bool { return true }
		if l.ctx != nil {
			unwatch = context.AfterFunc(l.ctx, func() { l.t.Close(CloseTransportDead, "") }) //nolint:errcheck
		}
		done := end
		end = func(err error) {
			unwatch()
			releaseTransportBuffers(l.t) // the last reader of the chain
			done(err)
		}
		go l.readAvailable(pt, end)
		return
	}
	go func() { end(l.routineRead()) }()
}

// readAvailable applies every message there is, then waits for more: on
// this goroutine after a bulk burst, on a fresh one otherwise.
//
// A fresh goroutine waits on a small stack, so a transport that is idle or
// exchanges small messages does not hold a grown one while it waits (its
// quiet second). A transport that has just delivered a bulk burst will
// most likely have more at once: its reader waits itself, saving a
// goroutine start and a stack growth (the AES-GCM open needs more than a
// new goroutine has) per burst, 4 % of the gateway's CPU at 32 KiB
// messages.
func (l *link) readAvailable(pt pollTransport, end func(error)) {
	burst := 0
	for {
		msg, err := pt.tryReadMessage()
		if err == errWouldBlock {
			if burst < bulkBurst {
				go l.parkRead(pt, end)
				return
			}
			if !l.waitRead(pt, end) {
				return
			}
			burst = 0
			continue
		}
		if err == nil {
			burst += len(msg)
			err = l.handleMessage(msg)
		}
		if err != nil {
			end(err)
			return
		}
	}
}

// bulkBurst is the burst of messages after which a reader waits for the
// next one itself (readAvailable).
const bulkBurst = 16 << 10

// parkRead waits for the transport to become readable, then reads it.
func (l *link) parkRead(pt pollTransport, end func(error)) {
	if l.waitRead(pt, end) {
		l.readAvailable(pt, end)
	}
}

// parker is a pollTransport that can wait without a goroutine (wsConn on
// Linux, internal/rawio.Reader.Park).
type parker interface {
	// waitReadableUntil is waitReadable until dl: quiet when nothing came.
	waitReadableUntil(dl time.Time) (quiet bool, err error)
	// park runs fn in a goroutine of its own once the transport is
	// readable (or closed); rawio.ErrNoPark where it cannot.
	park(fn func()) error
}

// shedQuiet drops both directions' AEAD states once the transport has been
// quiet for rawio.ParkAfter, whatever the last frames were: the reader owns
// recv, and send belongs to the flusher, which does not run while s.mu is
// held with l.flushing false.
func (l *link) shedQuiet() {
	l.recv.shed()
	s := l.s
	s.mu.Lock()
	if !l.flushing {
		l.send.shed()
	}
	s.mu.Unlock()
}

// waitRead waits for the transport to become readable and reports whether
// the caller reads on. It does not when the wait ended the transport (end
// has run) or was parked in rawio's epoll set, which runs readAvailable on a
// goroutine of its own once the transport is readable.
func (l *link) waitRead(pt pollTransport, end func(error)) bool {
	if pk, ok := pt.(parker); ok {
		quiet, err := pk.waitReadableUntil(time.Now().Add(rawio.ParkAfter))
		if err != nil {
			end(err)
			return false
		}
		if !quiet {
			return true
		}
		l.shedQuiet()
		switch err := pk.park(func() { l.readAvailable(pt, end) }); {
		case err == nil:
			return false
		case !errors.Is(err, rawio.ErrNoPark):
			end(err)
			return false
		}
	}
	if err := pt.waitReadable(context.Background()); err != nil {
		end(err)
		return false
	}
	return true
}

// releaseTransportBuffers gives a transport's read buffers back when its
// reader is done with it.
func releaseTransportBuffers(t Transport) {
	if r, ok := t.(interface{ releaseBuffers() }); ok {
		r.releaseBuffers()
	}
}

// handleMessage decrypts and applies one transport message.
func (l *link) handleMessage(msg []byte) error {
	s := l.s
	l.lastRecv.Store(l.now())
	// Decrypted in place (the transport lends msg until its next read);
	// DATA is copied into the receive queue.
	p := msg
	if !l.plain {
		var err error
		if p, err = l.recv.state().Decrypt(msg[:0], nil, msg); err != nil {
			// Tampering or corruption ends the transport, not the session.
			return errTampered
		}
	}
	f, err := parseFrame(p)
	s.mu.Lock()
	if err != nil {
		err = &CloseError{Code: CloseProtocolError, Reason: err.Error()}
	} else if f.typ == frameConfirm {
		err = protoErr("CONFIRM after the first frame")
	} else {
		err = s.handleFrameLocked(l, &f)
	}
	if err == errSessionDone {
		l.closed = true
	} else if err != nil {
		s.failLocked(err, true)
	}
	s.mu.Unlock()
	return err
}

func encodeID(id [sessionIDLen]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }
