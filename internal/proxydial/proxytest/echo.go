package proxytest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Echo is a TCP echo server on 127.0.0.1: it writes back every byte it reads
// and half-closes its side when the client half-closes. Its fields are
// read-only; its methods are safe for concurrent use.
type Echo struct {
	// Addr is the 127.0.0.1:port the server listens on.
	Addr string

	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	conns    struct {
		sync.Mutex
		closed bool
		set    map[net.Conn]struct{}
	}
}

// StartEcho starts an echo server and stops it in tb.Cleanup, closing its
// connections and waiting for its goroutines.
func StartEcho(tb testing.TB) *Echo {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxytest: listen: %v", err)
	}
	e := &Echo{Addr: ln.Addr().String(), ln: ln}
	e.conns.set = make(map[net.Conn]struct{})
	e.wg.Add(1)
	go e.serve()
	tb.Cleanup(e.close)
	return e
}

// Accepted returns how many connections the server has accepted.
func (e *Echo) Accepted() int { return int(e.accepted.Load()) }

func (e *Echo) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return // closed by close()
		}
		e.accepted.Add(1)
		e.conns.Lock()
		if e.conns.closed {
			e.conns.Unlock()
			c.Close()
			return
		}
		e.conns.set[c] = struct{}{}
		e.conns.Unlock()
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			// Plain buffers: the Reader/Writer wrappers keep io.Copy from
			// splicing a socket into itself.
			io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 32<<10))
			closeWrite(c)
			e.conns.Lock()
			delete(e.conns.set, c)
			e.conns.Unlock()
			c.Close()
		}()
	}
}

func (e *Echo) close() {
	e.ln.Close()
	e.conns.Lock()
	e.conns.closed = true
	for c := range e.conns.set {
		c.Close()
	}
	e.conns.Unlock()
	e.wg.Wait()
}
