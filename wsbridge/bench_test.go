package wsbridge_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dualgate/dualgate/wsbridge"
)

// BenchmarkBridgeTCP measures the byte-stream copy path: a real loopback
// TCP session bridged to a real TCP echo upstream, 32 KiB per operation
// through both copy loops.
func BenchmarkBridgeTCP(b *testing.B) {
	echo := startTCPEcho(b)
	br, _ := newBridger(b, []string{"/b=tcp://" + echo}, nil)
	client, server := tcpPair(b)
	done := runBridge(b, br, newRouteSession(server, "/b"))
	const chunk = 32 << 10
	wbuf := make([]byte, chunk)
	rbuf := make([]byte, chunk)
	client.SetDeadline(time.Now().Add(10 * time.Minute))
	errc := make(chan error, 1)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := client.Write(wbuf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for left := b.N * chunk; left > 0; {
		n, err := client.Read(rbuf[:min(len(rbuf), left)])
		if err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	client.Close()
	waitErr(b, done)
}

// chanSession is an in-memory message session, so that BenchmarkBridgeMessages
// measures the bridge's own cost per message.
type chanSession struct {
	net.Conn // unused; satisfies net.Conn
	in       chan []byte
	out      chan []byte
	done     chan struct{}
}

func (s *chanSession) ReadMessage(ctx context.Context) (wsbridge.MessageType, []byte, error) {
	select {
	case p := <-s.in:
		return wsbridge.MessageBinary, p, nil
	case <-s.done:
		return 0, nil, io.EOF
	}
}

func (s *chanSession) WriteMessage(ctx context.Context, _ wsbridge.MessageType, p []byte) error {
	select {
	case s.out <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *chanSession) Info() wsbridge.Info { return wsbridge.Info{Route: "/m"} }
func (s *chanSession) Close() error        { return nil }
func (s *chanSession) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}

// BenchmarkBridgeMessages measures the message path through the built-in
// echo upstream: 4 KiB messages, session to upstream and back.
func BenchmarkBridgeMessages(b *testing.B) {
	br, _ := newBridger(b, []string{"/m=builtin:echo"}, nil)
	s := &chanSession{in: make(chan []byte), out: make(chan []byte), done: make(chan struct{})}
	done := runBridge(b, br, s)
	msg := make([]byte, 4<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			s.in <- msg
		}
	}()
	for range b.N {
		<-s.out
	}
	b.StopTimer()
	close(s.done)
	if err := waitErr(b, done); err != nil {
		b.Fatal(err)
	}
}
