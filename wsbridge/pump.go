package wsbridge

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/rawio"
	"github.com/dualgate/dualgate/resume"
)

// A pollEnd is an endpoint that can be read without waiting and can say
// when it has something, so that a copy loop from it needs no goroutine
// while it is idle: a resumable session (resume.Conn.TryRead,
// TryAppendMessage and NotifyReadable), a TCP or unix upstream
// (internal/rawio) and the built-in echo.
type pollEnd interface {
	endpoint
	// tryRead is read without waiting: errWouldBlock when nothing is there.
	tryRead(lb *loopBuf) (MessageType, []byte, error)
	// notify runs f on a new goroutine once tryRead may have more to say
	// (data, an end, or the endpoint closed); it may read into lb for
	// tryRead to return.
	notify(lb *loopBuf, f func())
}

var errWouldBlock = errors.New("wsbridge: nothing to read now")

// pollable returns e as a pollEnd when it can serve as one.
func pollable(e endpoint) (pollEnd, bool) {
	switch e := e.(type) {
	case *sessionEnd:
		if rs, ok := e.s.(resumeSession); ok {
			return &sessionPoll{sessionEnd: e, c: rs.Conn}, true
		}
	case *echoEnd:
		return e, true
	case *streamEnd:
		if e.rr != nil {
			return &streamPoll{streamEnd: e}, true
		}
	}
	return nil, false
}

// sessionPoll is a resumable session as a pollEnd: read as a byte stream
// towards a byte-stream upstream, by messages (into the sessionEnd's
// message buffer) otherwise.
type sessionPoll struct {
	*sessionEnd
	c *resume.Conn
}

func (e *sessionPoll) tryRead(lb *loopBuf) (MessageType, []byte, error) {
	if e.bytes {
		b := lb.get()
		n, err := e.c.TryRead(b)
		if errors.Is(err, resume.ErrWouldBlock) {
			return 0, nil, errWouldBlock
		}
		return MessageBinary, b[:n], err
	}
	typ, p, err := e.c.TryAppendMessage(e.msgBuf[:0])
	if cap(p) > cap(e.msgBuf) {
		e.msgBuf = p[:0]
	}
	if errors.Is(err, resume.ErrWouldBlock) {
		return 0, nil, errWouldBlock
	}
	return MessageType(typ), p, err
}

func (e *sessionPoll) notify(_ *loopBuf, f func()) { e.c.NotifyReadable(f) }

// streamPoll is a TCP or unix upstream as a pollEnd.
type streamPoll struct {
	*streamEnd
	n   int   // bytes notify read into the pump's buffer
	err error // and the error it got
}

func (e *streamPoll) tryRead(lb *loopBuf) (MessageType, []byte, error) {
	n, err := e.n, e.err
	e.n, e.err = 0, nil
	if n == 0 && err == nil {
		n, err = e.rr.ReadNow(lb)
		if errors.Is(err, rawio.ErrWouldBlock) {
			return 0, nil, errWouldBlock
		}
	}
	if n == 0 {
		return MessageBinary, nil, err
	}
	return MessageBinary, lb.get()[:n], err
}

// notify parks a goroutine with a minimal stack and no buffer until the
// socket has something, reads it into lb (a closed socket or a passed
// deadline ends the wait too) and runs f, whose tryRead returns it. After a
// quiet second the goroutine hands the wait to rawio's epoll set and ends;
// f then runs when the socket has something, and its tryRead reads it.
func (e *streamPoll) notify(lb *loopBuf, f func()) {
	go func() {
		e.c.SetReadDeadline(time.Now().Add(rawio.ParkAfter)) //nolint:errcheck // a closed conn fails the read
		e.n, e.err = e.rr.Read(lb)
		// Cleared in every case: a passed deadline would fail the pump's
		// next ReadNow. (A deadline finishUpstream set goes too; it closes
		// the upstream at its own deadline, which ends a parked wait.)
		e.c.SetReadDeadline(time.Time{}) //nolint:errcheck
		if e.n == 0 && errors.Is(e.err, os.ErrDeadlineExceeded) {
			e.err = nil
			switch err := e.park(f); {
			case err == nil:
				return
			case errors.Is(err, rawio.ErrNoPark):
				e.n, e.err = e.rr.Read(lb)
			default:
				e.err = err
			}
		}
		f()
	}()
}

// startPump copies from src to dst like copyLoop, in goroutines that exist
// only while there is something to copy, and calls done with the result.
func (b *Bridger) startPump(ctx context.Context, src pollEnd, dst endpoint, ctr prometheus.Counter, done func(loopResult)) {
	p := &pump{ctx: ctx, src: src, dst: dst, ctr: ctr, done: done, lb: loopBuf{pool: &b.bufPool}}
	p.run = p.copyAvailable
	if sp, ok := src.(*sessionPoll); ok && sp.bytes {
		if se, ok := dst.(*streamEnd); ok {
			switch se.c.(type) {
			case *net.TCPConn, *net.UnixConn: // writev
				p.session, p.sink = sp.c, se.c
				p.run = p.writeAvailable
			}
		}
	}
	go p.run()
}

type pump struct {
	ctx  context.Context
	src  pollEnd
	dst  endpoint
	ctr  prometheus.Counter
	done func(loopResult)
	lb   loopBuf
	run  func() // p.copyAvailable or p.writeAvailable, bound once

	// A session read as a byte stream towards a TCP or unix upstream goes
	// to the socket from the session's own blocks (writeAvailable).
	session *resume.Conn
	sink    io.Writer
}

// writeAvailable is copyAvailable without the copy into the pump's buffer:
// resume.Conn.TryWriteTo writes the session's received blocks to the
// upstream socket with writev.
func (p *pump) writeAvailable() {
	for {
		n, err := p.session.TryWriteTo(p.sink)
		if n > 0 {
			p.ctr.Add(float64(n))
		}
		var we *resume.WriteError
		switch {
		case err == nil:
		case errors.Is(err, resume.ErrWouldBlock):
			p.src.notify(&p.lb, p.run)
			return
		case errors.As(err, &we):
			p.done(loopResult{writeErr: we.Err})
			return
		default:
			p.done(loopResult{readErr: err})
			return
		}
	}
}

// copyAvailable copies what src has, then waits for more through notify.
func (p *pump) copyAvailable() {
	for {
		typ, data, err := p.src.tryRead(&p.lb)
		if err == errWouldBlock {
			p.lb.release()
			p.src.notify(&p.lb, p.run)
			return
		}
		if len(data) > 0 {
			if werr := p.dst.write(p.ctx, typ, data); werr != nil {
				p.lb.release()
				p.done(loopResult{writeErr: werr})
				return
			}
			p.ctr.Add(float64(len(data)))
		}
		if err != nil {
			p.lb.release()
			p.done(loopResult{readErr: err})
			return
		}
	}
}
