package legacy

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// BenchmarkThroughput measures one session's client→server throughput over
// loopback TCP, with and without RC4.
func BenchmarkThroughput(b *testing.B) {
	for _, encrypt := range []bool{false, true} {
		b.Run(map[bool]string{true: "rc4", false: "plain"}[encrypt], func(b *testing.B) {
			ts := startServer(b, &ServerOptions{Encrypt: encrypt}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := Dial(ctx, "tcp", ts.addr, &DialOptions{Encrypt: encrypt})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			sess := ts.accept(b)
			defer sess.Close()
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.CopyN(io.Discard, sess, int64(b.N)*int64(len(buf)))
			}()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
		})
	}
}

// BenchmarkHandshake measures new-session handshakes per second (both
// sides' dh64, RC4 setup and MD5) over loopback TCP.
func BenchmarkHandshake(b *testing.B) {
	ts := startServer(b, &ServerOptions{MaxSessionsPerIP: 1 << 30, MaxSessions: 1 << 30}, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ts.Accept()
			if err != nil {
				return
			}
			_ = c.(*Conn).endWithNoLinger()
		}
	}()
	b.ReportAllocs()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := Dial(ctx, "tcp", ts.addr, &DialOptions{LingerTimeout: time.Millisecond})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	b.StopTimer()
	_ = ts.Server.Close()
	<-done
}

// BenchmarkDH64 measures one modular exponentiation.
func BenchmarkDH64(b *testing.B) {
	b.ReportAllocs()
	x := uint64(0x41A73AF1ACD90000)
	for range b.N {
		x = dhPublic(x) | 2
	}
	_ = x
}
