//go:build linux

package rawio_test

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// parkedFn returns a function for Park that reports on fired each time it runs.
func parkedFn(fired chan<- int, id int) func() { return func() { fired <- id } }

func waitFired(t *testing.T, fired <-chan int) int {
	t.Helper()
	select {
	case id := <-fired:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("parked function did not run")
	}
	return -1
}

func notFired(t *testing.T, fired <-chan int, d time.Duration) {
	t.Helper()
	select {
	case id := <-fired:
		t.Fatalf("parked function %d ran with nothing to report", id)
	case <-time.After(d):
	}
}

// TestParkRunsWhenReadable parks many idle sockets: none fires while idle,
// each fires exactly once when its peer writes (or closes, or resets), a
// re-park after reading fires again, and with nothing parked the poller's
// goroutine is gone (goleak).
func TestParkRunsWhenReadable(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			const n = 50
			others := goleak.IgnoreCurrent()
			fired := make(chan int, 2*n)
			type end struct {
				ours, peer net.Conn
				r          interface {
					Park(func()) error
				}
			}
			ends := make([]end, n)
			before := runtime.NumGoroutine()
			for i := range ends {
				ours, peer := pair(t, network)
				r := newReader(t, ours)
				if err := r.Park(parkedFn(fired, i)); err != nil {
					t.Fatal(err)
				}
				ends[i] = end{ours, peer, r}
			}
			if g := runtime.NumGoroutine() - before; g > 2 {
				t.Fatalf("%d parked sockets cost %d goroutines", n, g)
			}
			notFired(t, fired, 100*time.Millisecond)
			seen := make([]int, n)
			for i, e := range ends {
				switch i % 3 {
				case 0:
					e.peer.Write([]byte("x")) //nolint:errcheck
				case 1:
					e.peer.Close()
				case 2:
					if tc, ok := e.peer.(*net.TCPConn); ok {
						tc.SetLinger(0) //nolint:errcheck // a reset
					}
					e.peer.Close()
				}
				seen[waitFired(t, fired)]++
			}
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("socket %d fired %d times", i, c)
				}
			}
			notFired(t, fired, 50*time.Millisecond)
			// Read the byte of a written one and park it again: it fires on
			// the next byte only.
			r := newReader(t, ends[0].ours)
			buf := newCountingBuffer(16)
			if got, err := r.ReadNow(buf); got != 1 || err != nil {
				t.Fatalf("ReadNow: %d, %v", got, err)
			}
			buf.Release()
			if err := r.Park(parkedFn(fired, 0)); err != nil {
				t.Fatal(err)
			}
			notFired(t, fired, 50*time.Millisecond)
			ends[0].peer.Write([]byte("y")) //nolint:errcheck
			if id := waitFired(t, fired); id != 0 {
				t.Fatalf("socket %d fired", id)
			}
			goleak.VerifyNone(t, others) // the poller's goroutine exits with nothing parked
		})
	}
}

// TestCancelTakesParkBack checks that Cancel returns the pending function
// (so that the owner can run it when it closes the connection) and that the
// function then never runs from the poller; that Park after Close fails;
// and that a socket closed while parked leaves nothing behind.
func TestCancelTakesParkBack(t *testing.T) {
	others := goleak.IgnoreCurrent()
	ours, peer := pair(t, "tcp")
	r := newReader(t, ours)
	var runs atomic.Int32
	fn := func() { runs.Add(1) }
	if r.Cancel() != nil {
		t.Fatal("Cancel with nothing parked returned a function")
	}
	if err := r.Park(fn); err != nil {
		t.Fatal(err)
	}
	got := r.Cancel()
	if got == nil {
		t.Fatal("Cancel did not return the parked function")
	}
	if r.Cancel() != nil {
		t.Fatal("second Cancel returned a function")
	}
	peer.Write([]byte("x")) //nolint:errcheck
	time.Sleep(50 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("a cancelled park ran %d times", n)
	}
	ours.Close()
	if err := r.Park(fn); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Park after Close: %v, want net.ErrClosed", err)
	}
	goleak.VerifyNone(t, others)
}
