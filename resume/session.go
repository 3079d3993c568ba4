package resume

import (
	"context"
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
	rPartial  []byte // ReadMessage: part of a message taken before a timeout
	rLent     bool   // TryWriteTo writes from rq's blocks: only it may discard them
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
	closeTimer  *time.Timer // Conn.StartClose: ends the session at the close timeout
	detachedAt  time.Time
	recvWake    chan struct{} // made by the first waiter (wakeChan), nil after a wake
	sendWake    chan struct{}
	recvWaiting bool
	sendWaiting bool
	onReadable  func() // Conn.NotifyReadable: run (on a new goroutine) at the next wake of readers
	stateQ      []State
	notifying   bool
}

func newSession(cfg *sessionConfig, client bool) *session {
	return &session{
		cfg: cfg, client: client,
	}
}

// doneLocked returns the channel closed when the session ends, made on
// first use so that a session nobody waits for holds none. The caller holds
// s.mu.
func (s *session) doneLocked() chan struct{} {
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// doneChan is doneLocked for a caller that does not hold s.mu.
func (s *session) doneChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneLocked()
}

// wakeChan returns *ch, made when a waiter first needs it, so that an idle
// session holds no wake channels. The caller holds s.mu.
func wakeChan(ch *chan struct{}) <-chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

func (s *session) wakeRecvLocked() {
	if f := s.onReadable; f != nil {
		s.onReadable = nil
		go f()
	}
	if s.recvWaiting {
		s.recvWaiting = false
		close(s.recvWake)
		s.recvWake = nil
	}
}

func (s *session) wakeSendLocked() {
	if s.sendWaiting {
		s.sendWaiting = false
		close(s.sendWake)
		s.sendWake = nil
	}
}

// waitLocked releases mu until ch is closed, ctx ends or the deadline passes.
func (s *session) waitLocked(ctx context.Context, ch <-chan struct{}, dl *deadline) error {
	done := s.doneLocked()
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-dl.wait():
		return errDeadline
	case <-done:
		return nil
	}
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
// beginClose starts the close of Conn.CloseWithError and returns the
// channel closed when the session ends; net.ErrClosed if it was closed.
func (s *session) beginClose(code CloseCode, reason string) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appClosed {
		return nil, net.ErrClosed
	}
	s.appClosed = true
	s.discardReceivedLocked()
	if s.err == nil && s.localClose == nil {
		s.localClose = &CloseError{Code: code, Reason: truncReason(reason)}
		s.kickLocked()
	}
	s.wakeRecvLocked()
	s.wakeSendLocked()
	return s.doneLocked(), nil
}

// closeTimedOut ends a session whose close exchange did not complete
// within the close timeout.
func (s *session) closeTimedOut(code CloseCode, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return // it ended meanwhile (and gave its link the close timeout)
	}
	if l := s.link; l != nil {
		l.closed = true
		go l.shut(code, reason)
	}
	s.endLocked(net.ErrClosed)
}

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
	if s.closeTimer != nil {
		s.closeTimer.Stop()
	}
	s.sq.reset(s.sq.end())
	s.smsgs = boundaries{}
	close(s.doneLocked())
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
		s.ttlTimer = nil // an attached session holds no TTL timer
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
