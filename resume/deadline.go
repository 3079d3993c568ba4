package resume

import (
	"context"
	"sync"
	"time"
)

// deadline is a net.Conn deadline: a channel closed when the deadline
// passes, re-armed by every set. The zero value has no deadline. Safe for
// concurrent use.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired and closed ch: start over
	}
	d.timer = nil
	closed := false
	if d.ch != nil {
		select {
		case <-d.ch:
			closed = true
		default:
		}
	}
	if d.ch == nil || closed {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// wait returns a channel closed once the deadline has passed (nil: never).
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// ctxMutex is a mutex whose lock respects a context and a deadline, for
// user-facing calls that may block for long (Read, Write). The zero value is
// unlocked. A channel is made only while someone waits, so that an idle
// session holds none.
type ctxMutex struct {
	mu   sync.Mutex
	held bool
	wake chan struct{} // closed by unlock; made by the first waiter
}

func (m *ctxMutex) lock(ctx context.Context, dl *deadline) error {
	for {
		m.mu.Lock()
		if !m.held {
			m.held = true
			m.mu.Unlock()
			return nil
		}
		if m.wake == nil {
			m.wake = make(chan struct{})
		}
		wake := m.wake
		m.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-dl.wait():
			return errDeadline
		}
	}
}

func (m *ctxMutex) unlock() {
	m.mu.Lock()
	m.held = false
	if m.wake != nil {
		close(m.wake) // every waiter tries again; one wins
		m.wake = nil
	}
	m.mu.Unlock()
}
