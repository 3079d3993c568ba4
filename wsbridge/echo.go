package wsbridge

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
)

// echoEnd is the built-in echo upstream: every message written is read back
// unchanged, with its type. It holds at most limit messages; a writer blocks
// beyond that, which slows the client (backpressure). It is a pollEnd, so an
// idle echo bridge holds no goroutine.
type echoEnd struct {
	mu      sync.Mutex
	q       []echoMsg
	limit   int
	eof     bool          // closeWrite: nothing more is written
	closed  bool          // close
	wake    chan struct{} // closed (and replaced) on a change while someone waits
	waiting bool
	onData  func() // notify's f, run once tryRead has something to say
}

type echoMsg struct {
	typ MessageType
	p   []byte
}

var errEchoClosed = errors.New("wsbridge: echo upstream closed")

func newEchoEnd(limit int) *echoEnd {
	return &echoEnd{limit: max(limit, 1), wake: make(chan struct{})}
}

// changedLocked wakes whoever waits for a change.
func (e *echoEnd) changedLocked() {
	if e.waiting {
		e.waiting = false
		close(e.wake)
		e.wake = make(chan struct{})
	}
	if f := e.onData; f != nil && (len(e.q) > 0 || e.eof || e.closed) {
		e.onData = nil
		go f()
	}
}

// waitLocked releases mu until a change or ctx's end; it returns with mu
// held unless ctx ended.
func (e *echoEnd) waitLocked(ctx context.Context) error {
	w := e.wake
	e.waiting = true
	e.mu.Unlock()
	select {
	case <-w:
		e.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeLocked returns the next message, or the end; ok is false when there
// is nothing to say yet.
func (e *echoEnd) takeLocked() (m echoMsg, ok bool, err error) {
	switch {
	case e.closed:
		return echoMsg{}, true, net.ErrClosed
	case len(e.q) > 0:
		m = e.q[0]
		e.q[0] = echoMsg{}
		e.q = e.q[1:]
		if len(e.q) == 0 {
			e.q = nil
		}
		e.changedLocked() // room for a writer
		return m, true, nil
	case e.eof:
		return echoMsg{}, true, io.EOF
	}
	return echoMsg{}, false, nil
}

func (e *echoEnd) read(ctx context.Context, _ *loopBuf) (MessageType, []byte, error) {
	e.mu.Lock()
	for {
		m, ok, err := e.takeLocked()
		if ok {
			e.mu.Unlock()
			return m.typ, m.p, err
		}
		if err := e.waitLocked(ctx); err != nil {
			return 0, nil, err
		}
	}
}

func (e *echoEnd) tryRead(_ *loopBuf) (MessageType, []byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok, err := e.takeLocked()
	if !ok {
		return 0, nil, errWouldBlock
	}
	return m.typ, m.p, err
}

func (e *echoEnd) notify(_ *loopBuf, f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onData = f
	e.changedLocked() // runs f at once if there is something already
}

func (e *echoEnd) write(ctx context.Context, typ MessageType, p []byte) error {
	e.mu.Lock()
	for {
		switch {
		case e.closed:
			e.mu.Unlock()
			return net.ErrClosed
		case e.eof:
			e.mu.Unlock()
			return errEchoClosed
		case len(e.q) < e.limit:
			e.q = append(e.q, echoMsg{typ: typ, p: append([]byte(nil), p...)})
			e.changedLocked()
			e.mu.Unlock()
			return nil
		}
		if err := e.waitLocked(ctx); err != nil {
			return err
		}
	}
}

func (e *echoEnd) closeWrite() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.eof = true
	e.changedLocked()
	return nil
}

func (e *echoEnd) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.changedLocked()
	return nil
}
