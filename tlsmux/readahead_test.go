package tlsmux

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/dualgate/dualgate/listener/listenertest"
)

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestReadAheadBytes reads a stream written in random pieces with reads of
// random sizes (smaller and larger than what the socket holds): every byte
// arrives once and in order, the end is io.EOF, and no buffer stays held.
func TestReadAheadBytes(t *testing.T) {
	server, client := tcpPair(t)
	ra := newReadAhead(server)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	go func() {
		for b := want; len(b) > 0; {
			n := min(len(b), 1+rand.IntN(200_000))
			if _, err := client.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		client.(*net.TCPConn).CloseWrite() //nolint:errcheck
	}()
	_ = ra.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, 0, len(want))
	p := make([]byte, 2*readAheadSize)
	for {
		n, err := ra.Read(p[:1+rand.IntN(len(p))])
		got = append(got, p[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
	if ra.raw == nil {
		t.Fatal("a TCP connection was not read through its raw socket")
	}
	if ra.buf != nil || readAheadHeld.Load() != 0 {
		t.Fatalf("buffer still held after the end: %v, %d", ra.buf != nil, readAheadHeld.Load())
	}
}

// TestReadAheadIdleHoldsNoBuffer parks TLS reads on idle connections: none
// holds a read-ahead buffer while waiting, and each one's data still
// arrives once the peer writes.
func TestReadAheadIdleHoldsNoBuffer(t *testing.T) {
	const conns = 20
	type pair struct {
		srv, cli *tls.Conn
		got      chan []byte
	}
	pairs := make([]pair, conns)
	for i := range pairs {
		raw, craw := tcpPair(t)
		srv := tls.Server(newReadAhead(raw), listenertest.ServerConfig(t))
		cli := tls.Client(craw, listenertest.ClientConfig(t, 0))
		errc := make(chan error, 1)
		go func() { errc <- srv.Handshake() }()
		if err := cli.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		pairs[i] = pair{srv, cli, make(chan []byte, 1)}
		go func() {
			b := make([]byte, 64)
			_ = srv.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, _ := srv.Read(b)
			pairs[i].got <- b[:n]
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the reads park
	if n := readAheadHeld.Load(); n != 0 {
		t.Fatalf("%d idle connections hold a read-ahead buffer", n)
	}
	for i, p := range pairs {
		msg := []byte{'m', byte(i)}
		if _, err := p.cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got := <-p.got; !bytes.Equal(got, msg) {
			t.Fatalf("conn %d read %q", i, got)
		}
		p.srv.Close()
		p.cli.Close()
	}
	if n := readAheadHeld.Load(); n != 0 {
		t.Fatalf("%d buffers held after the reads", n)
	}
}
