package resume

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// State is the state of a session as seen by one side.
//
//	Connecting ──► Connected ◄──► Detached
//	     │             │              │
//	     └─────────────┴──► Closed ◄──┘
type State int32

// Session states.
const (
	StateConnecting State = iota // first handshake in progress (client)
	StateConnected               // a transport is attached
	StateDetached                // no transport: the client reconnects, the server waits for a resume
	StateClosed                  // the session has ended
)

// String returns the name of the state.
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDetached:
		return "detached"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}

// sessionConfig is the normalised configuration shared by the sessions of a
// server or of one Dial.
type sessionConfig struct {
	window       uint32
	ping, dead   time.Duration
	maxMsg       int
	closeTimeout time.Duration
	logger       *slog.Logger
	m            *metrics
	onState      func(State)
}

// session is one side of a resumable session. All mutable fields are
// guarded by mu; the methods with the Locked suffix need it held.
type session struct {
	cfg    *sessionConfig
	id     [sessionIDLen]byte
	client bool
	secret []byte
	info   TransportInfo
	srv    *Server // server side
	conn   *Conn   // server side: what Accept yields
	// confirmed (server): a CONFIRM arrived and Accept yielded the session.
	confirmed bool
	cl        *clientSide

	readMu, writeMu ctxMutex
	readDL, writeDL deadline

	mu    sync.Mutex
	state State
	link  *link

	// send direction: sq holds [acked, written); sent is the next offset to
	// transmit on the current link.
	sq         byteQueue
	smsgs      boundaries
	sTailText  bool
	acked      uint64
	sent       uint64
	peerWindow uint32

	// receive direction: rq holds [delivered, next).
	rq        byteQueue
	rmsgs     boundaries
	rTailText bool
	rInMsg    bool
	ackSent   uint64
	ackTimer  *time.Timer
	ackArmed  bool

	localClose *CloseError // CLOSE sent or to send
	appClosed  bool        // Close called: local I/O returns net.ErrClosed
	peerClose  *CloseError // CLOSE received
	err        error       // why the session ended; nil while it lives
	done       chan struct{}

	maxCounter  uint64 // largest resume counter seen (server) or used (client)
	ttlTimer    *time.Timer
	detachedAt  time.Time
	recvWake    chan struct{}
	sendWake    chan struct{}
	recvWaiting bool
	sendWaiting bool
	stateQ      []State
	notifying   bool
}

func newSession(cfg *sessionConfig, client bool) *session {
	return &session{
		cfg: cfg, client: client,
		readMu: newCtxMutex(), writeMu: newCtxMutex(),
		done: make(chan struct{}), recvWake: make(chan struct{}), sendWake: make(chan struct{}),
	}
}

func (s *session) wakeRecvLocked() {
	if s.recvWaiting {
		s.recvWaiting = false
		close(s.recvWake)
		s.recvWake = make(chan struct{})
	}
}

func (s *session) wakeSendLocked() {
	if s.sendWaiting {
		s.sendWaiting = false
		close(s.sendWake)
		s.sendWake = make(chan struct{})
	}
}

// waitLocked releases mu until ch is closed, ctx ends or the deadline passes.
func (s *session) waitLocked(ctx context.Context, ch <-chan struct{}, dl *deadline) error {
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-dl.wait():
		return errDeadline
	case <-s.done:
		return nil
	}
}

// write appends one message of the stream, blocking while the peer's window
// is full. It returns how many bytes were taken.
func (s *session) write(ctx context.Context, p []byte, text bool) (int, error) {
	if err := s.writeMu.lock(ctx, &s.writeDL); err != nil {
		return 0, err
	}
	defer s.writeMu.unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	off := 0
	for off < len(p) {
		if err := s.writeErrLocked(); err != nil {
			s.endMessageLocked(off, text)
			return off, err
		}
		room := int64(s.peerWindow) - int64(s.sq.end()-s.acked)
		if room <= 0 {
			s.sendWaiting = true
			if err := s.waitLocked(ctx, s.sendWake, &s.writeDL); err != nil {
				s.endMessageLocked(off, text)
				return off, err
			}
			continue
		}
		n := min(int(room), len(p)-off)
		if off == 0 {
			s.sTailText = text
		}
		s.sq.append(p[off : off+n])
		off += n
		if off == len(p) {
			s.smsgs.push(s.sq.end(), text)
		}
		s.kickLocked()
	}
	return off, nil
}

// endMessageLocked ends a message cut short by an error so that the next
// message does not merge into it.
func (s *session) endMessageLocked(written int, text bool) {
	if written > 0 {
		s.smsgs.push(s.sq.end(), text)
		s.kickLocked()
	}
}

func (s *session) writeErrLocked() error {
	switch {
	case s.appClosed:
		return net.ErrClosed
	case s.err != nil:
		return s.err
	case s.peerClose != nil:
		return s.peerClose
	case s.localClose != nil:
		return net.ErrClosed
	}
	return nil
}

// readErrLocked is the error of a read that finds no data.
func (s *session) readErrLocked() error {
	switch {
	case s.appClosed:
		return net.ErrClosed
	case s.peerClose != nil:
		if s.peerClose.Code == CloseNormal {
			return io.EOF
		}
		return s.peerClose
	case s.err != nil:
		return s.err
	}
	return nil
}

// read implements the byte-stream view: message boundaries are ignored.
func (s *session) read(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.readMu.lock(ctx, &s.readDL); err != nil {
		return 0, err
	}
	defer s.readMu.unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.appClosed {
			return 0, net.ErrClosed
		}
		if s.rq.n > 0 {
			n := s.rq.read(p)
			s.rmsgs.pop(s.rq.start)
			s.deliveredLocked()
			return n, nil
		}
		if err := s.readErrLocked(); err != nil {
			return 0, err
		}
		s.recvWaiting = true
		if err := s.waitLocked(ctx, s.recvWake, &s.readDL); err != nil {
			return 0, err
		}
	}
}

// readMessage returns the next whole message.
func (s *session) readMessage(ctx context.Context) (MessageType, []byte, error) {
	if err := s.readMu.lock(ctx, &s.readDL); err != nil {
		return 0, nil, err
	}
	defer s.readMu.unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var msg []byte
	typ := MessageBinary
	for {
		if s.appClosed {
			return 0, nil, net.ErrClosed
		}
		if s.rq.n > 0 {
			b, fin := s.rmsgs.next(s.rq.start)
			take := s.rq.n
			if fin {
				take = int(b.end - s.rq.start)
				if b.text {
					typ = MessageText
				}
			} else if s.rTailText {
				typ = MessageText
			}
			if len(msg)+take > s.cfg.maxMsg {
				err := &CloseError{Code: CloseTooBig, Reason: "message too big"}
				s.failLocked(err, true)
				return 0, nil, err
			}
			msg = append(msg, make([]byte, take)...)
			s.rq.read(msg[len(msg)-take:])
			s.rmsgs.pop(s.rq.start)
			s.deliveredLocked()
			if fin {
				return typ, msg, nil
			}
			continue
		}
		if err := s.readErrLocked(); err != nil {
			if len(msg) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		s.recvWaiting = true
		if err := s.waitLocked(ctx, s.recvWake, &s.readDL); err != nil {
			// The bytes taken so far were delivered; a partial message
			// cannot be put back, so it is lost to this reader.
			return 0, nil, err
		}
	}
}

// deliveredLocked schedules an acknowledgement after the application took
// bytes (docs/protocol.md §5.4).
func (s *session) deliveredLocked() {
	un := s.rq.start - s.ackSent
	if un == 0 || s.link == nil {
		return
	}
	if un >= uint64(s.cfg.window/4) {
		s.link.ack = true
		s.kickLocked()
		return
	}
	if s.ackArmed {
		return
	}
	s.ackArmed = true
	if s.ackTimer == nil {
		s.ackTimer = time.AfterFunc(ackDelay, s.ackTick)
	} else {
		s.ackTimer.Reset(ackDelay)
	}
}

func (s *session) ackTick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackArmed = false
	if s.link != nil && s.rq.start > s.ackSent {
		s.link.ack = true
		s.kickLocked()
	}
}

// handleFrameLocked applies one frame received on l.
func (s *session) handleFrameLocked(l *link, f *frame) error {
	switch f.typ {
	case frameData:
		return s.handleDataLocked(f)
	case frameAck:
		return s.ackLocked(f.num)
	case framePing:
		l.pong, l.pongVal = true, f.num
		s.kickLocked()
	case framePong:
	case frameClose:
		return s.handleCloseLocked(l, f)
	default:
		return protoErr("unexpected frame 0x%02x", f.typ)
	}
	return nil
}

func (s *session) handleDataLocked(f *frame) error {
	next := s.rq.end()
	if f.num > next {
		return protoErr("DATA at %d, expected %d", f.num, next)
	}
	end := f.num + uint64(len(f.payload))
	if end > next {
		if s.peerClose != nil {
			return protoErr("DATA after CLOSE")
		}
		if end-s.rq.start > uint64(s.cfg.window) {
			return protoErr("DATA beyond the receive window")
		}
		text := f.flags&flagText != 0
		if s.rInMsg && text != s.rTailText {
			return protoErr("TEXT flag changed within a message")
		}
		s.rTailText, s.rInMsg = text, true
		s.rq.append(f.payload[next-f.num:])
		if f.flags&flagFIN != 0 {
			s.rmsgs.push(end, text)
			s.rInMsg = false
		}
		if s.cfg.m != nil {
			s.cfg.m.bytesIn.Add(float64(end - next))
		}
		if s.appClosed {
			s.discardReceivedLocked()
		}
		s.wakeRecvLocked()
	}
	return s.ackLocked(f.ack)
}

// discardReceivedLocked delivers (drops) everything received, for a session
// whose application closed: the peer's data is still acknowledged so that
// its writes and its close complete (docs/protocol.md §5.6).
func (s *session) discardReceivedLocked() {
	s.rq.discard(s.rq.end())
	s.rmsgs.pop(s.rq.start)
	s.deliveredLocked()
}

// ackLocked applies the peer's delivered offset.
func (s *session) ackLocked(a uint64) error {
	if a > s.sq.end() {
		return protoErr("acknowledgement %d beyond the stream end %d", a, s.sq.end())
	}
	if a <= s.acked {
		return nil
	}
	s.acked = a
	s.sq.discard(a)
	s.smsgs.pop(a)
	if s.sent < a {
		s.sent = a
	}
	s.wakeSendLocked()
	return nil
}

func (s *session) handleCloseLocked(l *link, f *frame) error {
	if f.num != s.rq.end() {
		return protoErr("CLOSE at %d, stream at %d", f.num, s.rq.end())
	}
	if s.peerClose == nil {
		s.peerClose = &CloseError{Code: f.code, Reason: string(f.payload)}
		s.wakeRecvLocked()
		s.wakeSendLocked()
	}
	if s.localClose == nil {
		// Answer after our own pending data (docs/protocol.md §5.6).
		s.localClose = &CloseError{Code: f.code, Reason: truncReason(string(f.payload))}
		s.kickLocked()
		return nil
	}
	if l.closeSent {
		l.gotAnswer = true
		s.finishLocked()
		return errSessionDone
	}
	return nil
}

// finishLocked ends a session whose CLOSEs have been exchanged.
func (s *session) finishLocked() {
	if s.err != nil {
		return
	}
	err := error(net.ErrClosed)
	if s.peerClose != nil && !s.appClosed {
		err = s.peerClose
	}
	s.endLocked(err)
}

// failLocked ends the session because of err; with notify, a CLOSE with the
// error's code is attempted on the attached transport.
func (s *session) failLocked(err error, notify bool) {
	if s.err != nil {
		return
	}
	if notify && s.link != nil && s.localClose == nil {
		code := CloseStatus(err)
		if code == 0 {
			code = CloseInternalError
		}
		s.localClose = &CloseError{Code: code, Reason: truncReason(err.Error())}
		s.link.abortAfterClose = true
		s.kickLocked()
	}
	s.endLocked(err)
}

// endLocked moves the session to Closed: it wakes every waiter, frees the
// send buffer and forgets the server-side table entry. Received bytes stay
// readable.
func (s *session) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.setStateLocked(StateClosed)
	if s.ackTimer != nil {
		s.ackTimer.Stop()
	}
	if s.ttlTimer != nil {
		s.ttlTimer.Stop()
	}
	s.sq.reset(s.sq.end())
	s.smsgs = boundaries{}
	close(s.done)
	s.wakeRecvLocked()
	s.wakeSendLocked()
	if l := s.link; l != nil {
		code := CloseStatus(err)
		if code == 0 {
			code = CloseNormal
		}
		// The side that received the answer closes the transport (its
		// reader returns); otherwise the peer gets closeTimeout to do so.
		if !l.gotAnswer {
			l.shutAfter(s.cfg.closeTimeout, code)
		}
	}
	if s.srv != nil {
		s.srv.forgetLocked(s)
	}
	if s.cfg.logger != nil {
		s.cfg.logger.Debug("resume: session ended", "session", s.idString(), "err", err)
	}
}

func (s *session) setStateLocked(st State) {
	if s.state == st {
		return
	}
	old := s.state
	s.state = st
	if s.cfg.m != nil {
		s.cfg.m.stateChange(s.client, old, st)
	}
	if s.cfg.onState != nil {
		// Callbacks run without our lock, in order, on a goroutine that
		// exists only while notifications are pending.
		s.stateQ = append(s.stateQ, st)
		if !s.notifying {
			s.notifying = true
			go s.routineNotify()
		}
	}
}

// attachLocked makes l the session's transport. The caller has validated
// the handshake; peerDelivered is where retransmission starts, announced is
// the delivered offset this side told the peer in the handshake.
func (s *session) attachLocked(l *link, peerDelivered, announced uint64) error {
	if peerDelivered < s.acked || peerDelivered > s.sq.end() {
		return &CloseError{Code: CloseTooFarBehind, Reason: "delivered offset outside the held range"}
	}
	if err := s.ackLocked(peerDelivered); err != nil {
		return err
	}
	s.sent = peerDelivered
	s.ackSent = announced
	old := s.link
	s.link = l
	if s.ttlTimer != nil {
		s.ttlTimer.Stop()
	}
	if s.err == nil {
		s.setStateLocked(StateConnected)
	}
	l.start()
	if s.rq.start > announced {
		l.ack = true // delivered more since the handshake: tell the peer
	}
	if old != nil {
		old.closed = true
		go old.shut(CloseSuperseded, "superseded")
	}
	s.kickLocked()
	return nil
}

// detach forgets l if it is still the attached transport; then it shuts l
// down and waits for its flusher.
func (s *session) detach(l *link, cause error) {
	s.mu.Lock()
	if s.link == l {
		s.link = nil
		s.ackArmed = false
		if s.ackTimer != nil {
			s.ackTimer.Stop()
		}
		if s.err == nil {
			s.setStateLocked(StateDetached)
			s.detachedAt = time.Now()
			if s.srv != nil {
				s.srv.armTTLLocked(s)
			}
		}
	}
	l.closed = true
	s.mu.Unlock()
	code := CloseTransportDead
	if c := CloseStatus(cause); c != 0 {
		code = c
	}
	l.shut(code, "")
	l.wg.Wait()
	l.stopTimers()
}

func (s *session) routineNotify() {
	for {
		s.mu.Lock()
		if len(s.stateQ) == 0 {
			s.notifying = false
			s.stateQ = nil
			s.mu.Unlock()
			return
		}
		st := s.stateQ[0]
		s.stateQ = s.stateQ[1:]
		s.mu.Unlock()
		s.cfg.onState(st)
	}
}

func (s *session) idString() string { return encodeID(s.id) }
