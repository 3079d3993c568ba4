package proxytest

import (
	"sync"
	"testing"
	"time"
)

// counter is an event count that tests can wait on without polling. The zero
// value is ready to use; it is safe for concurrent use.
type counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed and replaced by every add; nil until needed
}

func (c *counter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

func (c *counter) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// wait blocks until the count reaches n, failing tb after waitTimeout.
// describe is called for the failure message.
func (c *counter) wait(tb testing.TB, n int, describe func(got int) string) {
	tb.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		got := c.n
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("proxytest: %s", describe(got))
			return
		}
	}
}
