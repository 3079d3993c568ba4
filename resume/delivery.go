package resume

// Delivery: the application side (Read, Write, messages) and the frames
// that move the stream (DATA, ACK, PING, CLOSE), all under the session lock.

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

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
			if err := s.waitLocked(ctx, wakeChan(&s.sendWake), &s.writeDL); err != nil {
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
		if n, done, err := s.readNowLocked(p); done {
			return n, err
		}
		s.recvWaiting = true
		if err := s.waitLocked(ctx, wakeChan(&s.recvWake), &s.readDL); err != nil {
			return 0, err
		}
	}
}

// tryRead is read without waiting: errWouldBlock when there is nothing to
// return yet.
func (s *session) tryRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.readMu.lock(context.Background(), &s.readDL); err != nil {
		return 0, err
	}
	defer s.readMu.unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, done, err := s.readNowLocked(p); done {
		return n, err
	}
	return 0, errWouldBlock
}

// maxWriteTo bounds the bytes one tryWriteTo hands to the writer.
const maxWriteTo = 256 << 10

// lentBlocks holds the slices of one tryWriteTo (net.Buffers.WriteTo makes
// a local array escape, so they come from a pool rather than the stack).
type lentBlocks [maxWriteTo/blockSize + 1][]byte

var lendPool = sync.Pool{New: func() any { return new(lentBlocks) }}

// tryWriteTo writes the received bytes to w straight from the receive
// queue's blocks (with writev when w is a *net.TCPConn or *net.UnixConn)
// and consumes what w took. With nothing queued it returns what tryRead
// would (errWouldBlock or the end of the stream); a failure of w comes back
// as a *WriteError.
func (s *session) tryWriteTo(w io.Writer) (int64, error) {
	if err := s.readMu.lock(context.Background(), &s.readDL); err != nil {
		return 0, err
	}
	defer s.readMu.unlock()
	s.mu.Lock()
	if s.appClosed {
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	if s.rq.n == 0 {
		err := s.readErrLocked()
		s.mu.Unlock()
		if err == nil {
			err = errWouldBlock
		}
		return 0, err
	}
	lent := lendPool.Get().(*lentBlocks)
	bufs := net.Buffers(s.rq.lend(lent[:0], maxWriteTo))
	s.rLent = true
	s.mu.Unlock()

	n, werr := bufs.WriteTo(w)
	*lent = lentBlocks{} // keeps no block from the pool
	lendPool.Put(lent)

	s.mu.Lock()
	s.rLent = false
	if s.appClosed {
		s.discardReceivedLocked() // Close came meanwhile and left the blocks to us
	} else {
		s.rq.discard(s.rq.start + uint64(n))
		s.rmsgs.pop(s.rq.start)
		s.deliveredLocked()
	}
	s.mu.Unlock()
	if werr != nil {
		return n, &WriteError{Err: werr}
	}
	return n, nil
}

// readNowLocked is what read returns without waiting; done is false when
// read would wait.
func (s *session) readNowLocked(p []byte) (n int, done bool, err error) {
	if s.appClosed {
		return 0, true, net.ErrClosed
	}
	if s.rq.n > 0 {
		n := s.rq.read(p)
		s.rmsgs.pop(s.rq.start)
		s.deliveredLocked()
		return n, true, nil
	}
	if err := s.readErrLocked(); err != nil {
		return 0, true, err
	}
	return 0, false, nil
}

// notifyReadable runs f on a new goroutine once Read may not block: at once
// if it would not block now, else at the next arrival of data or end of the
// session. A later call replaces an f not yet run.
func (s *session) notifyReadable(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rq.n > 0 || s.appClosed || s.readErrLocked() != nil {
		s.onReadable = nil
		go f()
		return
	}
	s.onReadable = f
}

// readMessage appends the next whole message to dst.
func (s *session) readMessage(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	return s.readMessageWait(ctx, dst, true)
}

// readMessageWait is readMessage; without wait it returns errWouldBlock
// instead of waiting (keeping a partial message for the next call).
func (s *session) readMessageWait(ctx context.Context, dst []byte, wait bool) (MessageType, []byte, error) {
	if err := s.readMu.lock(ctx, &s.readDL); err != nil {
		return 0, nil, err
	}
	defer s.readMu.unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	// A message cut short by a deadline or context is kept for the next call.
	base := len(dst)
	msg := append(dst, s.rPartial...)
	s.rPartial = nil
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
			if len(msg)-base+take > s.cfg.maxMsg {
				err := &CloseError{Code: CloseTooBig, Reason: "message too big"}
				s.failLocked(err, true)
				return 0, nil, err
			}
			msg = slices.Grow(msg, take)[:len(msg)+take]
			s.rq.read(msg[len(msg)-take:])
			s.rmsgs.pop(s.rq.start)
			s.deliveredLocked()
			if fin {
				return typ, msg, nil
			}
			continue
		}
		if err := s.readErrLocked(); err != nil {
			if len(msg) > base && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		err := errWouldBlock
		if wait {
			s.recvWaiting = true
			err = s.waitLocked(ctx, wakeChan(&s.recvWake), &s.readDL)
		}
		if err != nil {
			if len(msg) > base { // delivered (and acknowledged) already: keep it
				s.rPartial = append([]byte(nil), msg[base:]...)
			}
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
	if s.rLent {
		return // tryWriteTo discards once its write returns
	}
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
