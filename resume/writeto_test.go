package resume

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/streamtest"
)

// tcpSink returns the writing end of a loopback TCP connection and a
// channel that yields everything read from the other end once it is
// closed.
func tcpSink(t *testing.T) (*net.TCPConn, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		// Closed only after the accept: a connection still in the
		// backlog of a closed listener is reset.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), got
}

// TestTryWriteTo moves a stream from the client to a TCP socket with
// TryWriteTo (the bridge's path towards a byte-stream upstream): every byte
// arrives once and in order, ErrWouldBlock while nothing is queued, io.EOF
// after the client's close, and the window keeps moving (the stream is
// several windows long).
func TestTryWriteTo(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	data := make([]byte, 3<<20)
	streamtest.Fill(rand.New(rand.NewPCG(1, 2)), data)
	go func() {
		for off := 0; off < len(data); off += 50_000 {
			if _, err := c.Write(data[off:min(off+50_000, len(data))]); err != nil {
				return
			}
		}
		c.Close()
	}()
	sink, got := tcpSink(t)
	var total int64
	blocked := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := sc.TryWriteTo(sink)
		total += n
		if errors.Is(err, ErrWouldBlock) {
			blocked++
			if time.Now().After(deadline) {
				t.Fatalf("stream stalled after %d bytes", total)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
	}
	sink.Close()
	if b := <-got; total != int64(len(data)) || !bytes.Equal(b, data) {
		t.Fatalf("wrote %d, the socket got %d bytes; equal: %v", total, len(b), bytes.Equal(b, data))
	}
	if blocked == 0 {
		t.Log("TryWriteTo never found the queue empty")
	}
}

// TestTryWriteToWriteError: a failing writer comes back as a *WriteError
// (not as the end of the stream), what it did not take stays queued, and
// the session stays usable.
func TestTryWriteToWriteError(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	sink, _ := tcpSink(t)
	sink.Close()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err = sc.TryWriteTo(sink); !errors.Is(err, ErrWouldBlock) {
			break
		}
	}
	var we *WriteError
	if !errors.As(err, &we) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("TryWriteTo to a closed socket: %v, want a *WriteError wrapping net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	b := make([]byte, len("hellostill here"))
	if _, err := io.ReadFull(sc, b); err != nil || string(b) != "hellostill here" {
		t.Fatalf("read after the failed write: %q %v", b, err)
	}
}

// slowWriter blocks each Write until release is closed, so that a test can
// close the session while TryWriteTo has the receive queue's blocks lent.
type slowWriter struct {
	entered chan struct{}
	release chan struct{}
	got     []byte
}

func (w *slowWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	w.got = append(w.got, p...)
	return len(p), nil
}

// TestTryWriteToCloseWhileLent: CloseWithError while TryWriteTo writes
// from the queue's blocks must not hand those blocks back to the pool under
// the writer (it leaves them to TryWriteTo): the writer sees exactly the
// bytes that were queued, and the next call reports the close.
func TestTryWriteToCloseWhileLent(t *testing.T) {
	ts := newTestServer(t, nil)
	c, sc := dialPair(t, ts, ts.tcpURL(), nil)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: four blocks
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	// Wait until all of it is queued.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		sc.s.mu.Lock()
		n := sc.s.rq.n
		sc.s.mu.Unlock()
		if n == len(msg) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes queued", n, len(msg))
		}
	}
	w := &slowWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := sc.TryWriteTo(w)
		done <- err
	}()
	<-w.entered
	closed := make(chan struct{})
	go func() {
		sc.CloseWithError(CloseNormal, "") //nolint:errcheck
		close(closed)
	}()
	// Close has run its discard: the lent blocks must still be queued.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		sc.s.mu.Lock()
		closing, n := sc.s.appClosed, sc.s.rq.n
		sc.s.mu.Unlock()
		if closing {
			if n != len(msg) {
				t.Fatalf("Close discarded the blocks TryWriteTo is writing from (%d of %d bytes left)", n, len(msg))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CloseWithError did not start")
		}
	}
	// Blocks a premature discard would have freed are reused by new
	// queues in the meantime.
	for range 64 {
		b := blockPool.Get().(*block)
		for i := range b {
			b[i] = 'X'
		}
		blockPool.Put(b)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatalf("TryWriteTo: %v", err)
	}
	if !bytes.Equal(w.got, msg) {
		t.Fatalf("the writer got %d bytes, not the %d queued (corrupted: %v)", len(w.got), len(msg), bytes.Contains(w.got, []byte("XXXX")))
	}
	<-closed
	if _, err := sc.TryWriteTo(w); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	sc.s.mu.Lock()
	left := sc.s.rq.n
	sc.s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d bytes still queued after Close", left)
	}
}
