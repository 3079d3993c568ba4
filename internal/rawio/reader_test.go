//go:build unix

package rawio_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dualgate/dualgate/internal/rawio"
	"github.com/dualgate/dualgate/listener"
	"github.com/dualgate/dualgate/sniff"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// countingBuffer is a Buffer that records whether the reader holds it.
// It is safe for concurrent use, so that a test can look at it while a
// read waits in another goroutine.
type countingBuffer struct {
	mu       sync.Mutex
	b        []byte
	held     bool
	gets     int // Get calls that took the storage
	releases int
}

func newCountingBuffer(n int) *countingBuffer { return &countingBuffer{b: make([]byte, n)} }

func (c *countingBuffer) Get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.held {
		c.held = true
		c.gets++
	}
	return c.b
}

func (c *countingBuffer) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.held = false
		c.releases++
	}
}

// state returns whether the storage is held and how often it was released.
func (c *countingBuffer) state() (held bool, releases int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held, c.releases
}

// pair returns both ends of a real connection of the network ("tcp" on
// 127.0.0.1 or "unix").
func pair(tb testing.TB, network string) (ours, peer net.Conn) {
	tb.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(tb.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	peer, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { peer.Close() })
	ours, err = ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ours.Close() })
	return ours, peer
}

func newReader(tb testing.TB, c net.Conn) *rawio.Reader {
	tb.Helper()
	r := rawio.New(c)
	if r == nil {
		tb.Fatalf("New(%T) = nil", c)
	}
	return r
}

var networks = []string{"tcp", "unix"}

func TestReadStream(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ours, peer := pair(t, network)
			r := newReader(t, ours)
			want := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range want {
				want[i] = byte(rng.Uint32())
			}
			errc := make(chan error, 1)
			go func() {
				_, err := peer.Write(want)
				peer.Close()
				errc <- err
			}()
			var got []byte
			buf := newCountingBuffer(32 << 10)
			for {
				n, err := r.Read(buf)
				if err == io.EOF {
					if n != 0 {
						t.Fatalf("EOF with %d bytes", n)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if held, _ := buf.state(); !held {
					t.Fatal("read data into a buffer it no longer holds")
				}
				got = append(got, buf.b[:n]...)
				buf.Release()
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
			}
			// EOF again.
			if n, err := r.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("after EOF: %d, %v", n, err)
			}
		})
	}
}

// startRead runs r.Read(buf) in a goroutine and returns when the read has
// given the buffer back to wait for data.
func startRead(tb testing.TB, r *rawio.Reader, buf *countingBuffer) <-chan readResult {
	tb.Helper()
	_, before := buf.state()
	ch := make(chan readResult, 1)
	go func() {
		n, err := r.Read(buf)
		ch <- readResult{n, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, releases := buf.state()
		if !held && releases > before {
			return ch
		}
		if time.Now().After(deadline) {
			tb.Fatal("the read never gave its buffer back")
		}
		time.Sleep(time.Millisecond)
	}
}

type readResult struct {
	n   int
	err error
}

func wait(tb testing.TB, ch <-chan readResult) readResult {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		tb.Fatal("Read did not return")
	}
	return readResult{}
}

// TestWaitingReadHoldsNoBuffer: the reader asks for the buffer only when
// the socket has something, and keeps it then.
func TestWaitingReadHoldsNoBuffer(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ours, peer := pair(t, network)
			r := newReader(t, ours)
			buf := newCountingBuffer(16)
			for i := range 3 {
				res := startRead(t, r, buf)
				time.Sleep(20 * time.Millisecond) // parked in the poller by now
				if held, _ := buf.state(); held {
					t.Fatalf("round %d: the waiting read holds the buffer", i)
				}
				if _, err := peer.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				res2 := wait(t, res)
				if res2.err != nil || string(buf.b[:res2.n]) != "ping" {
					t.Fatalf("round %d: %q, %v", i, buf.b[:res2.n], res2.err)
				}
				if held, _ := buf.state(); !held {
					t.Fatalf("round %d: data returned in a released buffer", i)
				}
				buf.Release()
			}
		})
	}
}

func TestReadDeadline(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ours, peer := pair(t, network)
			r := newReader(t, ours)
			buf := newCountingBuffer(16)
			ours.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) //nolint:errcheck
			n, err := r.Read(buf)
			if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("want a deadline error, got %d, %v", n, err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%v is not a timeout net.Error", err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "read" {
				t.Fatalf("want a *net.OpError of op read, got %#v", err)
			}
			if held, _ := buf.state(); held {
				t.Fatal("buffer held after a failed read")
			}
			// A deadline set while waiting applies too, and clearing it
			// makes the reader usable again.
			ours.SetReadDeadline(time.Time{}) //nolint:errcheck
			res := startRead(t, r, buf)
			ours.SetReadDeadline(time.Now()) //nolint:errcheck
			if res := wait(t, res); !errors.Is(res.err, os.ErrDeadlineExceeded) {
				t.Fatalf("deadline set while waiting: %v", res.err)
			}
			ours.SetReadDeadline(time.Time{}) //nolint:errcheck
			peer.Write([]byte("ok"))          //nolint:errcheck
			if n, err := r.Read(buf); err != nil || string(buf.b[:n]) != "ok" {
				t.Fatalf("after clearing the deadline: %q, %v", buf.b[:n], err)
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ours, _ := pair(t, network)
			r := newReader(t, ours)
			buf := newCountingBuffer(16)
			res := startRead(t, r, buf)
			ours.Close()
			if res := wait(t, res); res.n != 0 || !errors.Is(res.err, net.ErrClosed) {
				t.Fatalf("want net.ErrClosed, got %d, %v", res.n, res.err)
			}
			if held, _ := buf.state(); held {
				t.Fatal("buffer held after a failed read")
			}
			if _, err := r.Read(buf); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v", err)
			}
		})
	}
}

func TestReadReset(t *testing.T) {
	ours, peer := pair(t, "tcp")
	r := newReader(t, ours)
	peer.(*net.TCPConn).SetLinger(0) //nolint:errcheck // close with a RST
	peer.Close()
	buf := newCountingBuffer(16)
	n, err := r.Read(buf)
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want ECONNRESET, got %d, %v", n, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr == nil {
		t.Fatalf("want a *net.OpError of op read with the address, got %#v", err)
	}
}

// wrapper is a net.Conn that wraps another and may hold bytes of its own,
// like listener.Conn.
type wrapper struct {
	net.Conn
	buffered int
}

func (w *wrapper) NetConn() net.Conn { return w.Conn }
func (w *wrapper) Buffered() int     { return w.buffered }

// plainWrapper offers NetConn but cannot say whether it holds bytes.
type plainWrapper struct{ net.Conn }

func (w *plainWrapper) NetConn() net.Conn { return w.Conn }

func TestNew(t *testing.T) {
	tcp, tcpPeer := pair(t, "tcp")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tests := []struct {
		name string
		c    net.Conn
		ok   bool
	}{
		{"tcp", tcp, true},
		{"tls", tls.Client(tcp, &tls.Config{InsecureSkipVerify: true}), false},
		{"pipe", a, false},
		{"udp", udp, false},
		{"wrapper, nothing buffered", &wrapper{Conn: tcp}, true},
		{"wrapper of a wrapper", &wrapper{Conn: &wrapper{Conn: tcp}}, true},
		{"wrapper with buffered bytes", &wrapper{Conn: tcp, buffered: 3}, false},
		{"wrapper of a wrapper with buffered bytes", &wrapper{Conn: &wrapper{Conn: tcp, buffered: 1}}, false},
		{"wrapper of a pipe", &wrapper{Conn: a}, false},
		{"wrapper of a tls.Conn", &wrapper{Conn: tls.Client(tcp, &tls.Config{InsecureSkipVerify: true})}, false},
		{"wrapper without Buffered", &plainWrapper{tcp}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawio.New(tc.c) != nil; got != tc.ok {
				t.Fatalf("New(%T) != nil: %v, want %v", tc.c, got, tc.ok)
			}
		})
	}

	// Reading through a wrapper reads the socket under it.
	r := newReader(t, &wrapper{Conn: &wrapper{Conn: tcp}})
	tcpPeer.Write([]byte("through")) //nolint:errcheck
	buf := newCountingBuffer(16)
	if n, err := r.Read(buf); err != nil || string(buf.b[:n]) != "through" {
		t.Fatalf("%q, %v", buf.b[:n], err)
	}
}

// TestNewListenerConn uses the real wrapper: a listener.Conn is looked
// through once the bytes it sniffed have been read.
func TestNewListenerConn(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := listener.New(inner, &listener.Options{Kinds: []sniff.Kind{sniff.KindHTTP}})
	defer l.Close()
	peer, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	const first = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := peer.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	c, err := l.For(sniff.KindHTTP).Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lc := c.(*listener.Conn)
	if lc.Buffered() == 0 {
		t.Fatal("nothing sniffed")
	}
	if rawio.New(lc) != nil {
		t.Fatal("New looked through a listener.Conn holding sniffed bytes")
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(lc, got); err != nil || string(got) != first {
		t.Fatalf("%q, %v", got, err)
	}
	if lc.Buffered() != 0 {
		t.Fatalf("%d bytes still buffered", lc.Buffered())
	}
	r := newReader(t, lc)
	peer.Write([]byte("after")) //nolint:errcheck
	buf := newCountingBuffer(16)
	if n, err := r.Read(buf); err != nil || string(buf.b[:n]) != "after" {
		t.Fatalf("%q, %v", buf.b[:n], err)
	}
}

func TestReadNow(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			ours, peer := pair(t, network)
			r := newReader(t, ours)
			buf := newCountingBuffer(16)
			if n, err := r.ReadNow(buf); n != 0 || !errors.Is(err, rawio.ErrWouldBlock) {
				t.Fatalf("ReadNow with nothing to read: %d, %v", n, err)
			}
			if held, _ := buf.state(); held {
				t.Fatal("ReadNow holds the buffer after ErrWouldBlock")
			}
			peer.Write([]byte("data")) //nolint:errcheck
			n, err := readNowEventually(r, buf)
			if err != nil || string(buf.b[:n]) != "data" {
				t.Fatalf("ReadNow after the peer wrote: %q, %v", buf.b[:n], err)
			}
			buf.Release()
			peer.Close()
			if n, err := readNowEventually(r, buf); n != 0 || err != io.EOF {
				t.Fatalf("ReadNow at the end: %d, %v", n, err)
			}
		})
	}
}

// readNowEventually calls ReadNow until it has something to say (data, an
// end, an error), for at most 10 s.
func readNowEventually(r *rawio.Reader, buf rawio.Buffer) (int, error) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := r.ReadNow(buf)
		if !errors.Is(err, rawio.ErrWouldBlock) || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(time.Millisecond)
	}
}
