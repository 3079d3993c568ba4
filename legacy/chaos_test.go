package legacy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/legacy/legacytest"
)

type syncWaitGroup struct{ sync.WaitGroup }

// stream is the deterministic content of a test session.
func stream(seed uint64) *rand.ChaCha8 { return legacytest.Stream(seed) }

// TestChaosHeavy pushes byte-exact echo traffic through a proxy that keeps
// dropping, resetting, half-opening and black-holing the transports, over
// raw TCP, TLS and WebSocket, with and without RC4.
func TestChaosHeavy(t *testing.T) {
	sessions := testenv.Scale(4, 2)
	total := testenv.Scale(4<<20, 1<<20)
	for _, kind := range []string{"tcp", "tls", "ws"} {
		for _, encrypt := range []bool{false, true} {
			name := kind + map[bool]string{true: "/encrypted", false: "/plain"}[encrypt]
			t.Run(name, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				e := newEnv(t, kind, ServerOptions{
					Registerer:       reg,
					Encrypt:          encrypt,
					ReconnectWait:    30 * time.Second,
					HandshakeTimeout: 5 * time.Second,
				}, &legacytest.Options{MinBytes: 64 << 10, MaxBytes: 1 << 20, Seed: uint64(len(name))})
				e.serveEcho(t)
				opts := &DialOptions{
					Encrypt:          encrypt,
					HandshakeTimeout: 5 * time.Second,
					ReconnectWait:    30 * time.Second,
					RetryInterval:    5 * time.Millisecond,
					MaxRetryInterval: 100 * time.Millisecond,
					ReadIdleTimeout:  500 * time.Millisecond,
				}
				conns := make([]*Conn, sessions)
				for i := range conns {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					c, err := DialWith(ctx, e.dial, opts)
					cancel()
					if err != nil {
						t.Fatal(err)
					}
					conns[i] = c
				}
				e.proxy.SetChaos(true)
				errs := make(chan error, sessions)
				for i, c := range conns {
					go func() {
						if err := legacytest.EchoExchange(c, uint64(i+1), total, 256<<10); err != nil {
							errs <- fmt.Errorf("session %d: %w", c.ID(), err)
							return
						}
						errs <- nil
					}()
				}
				failed := false
				for range conns {
					if err := <-errs; err != nil {
						t.Error(err)
						failed = true
					}
				}
				if failed {
					t.Logf("server log:\n%s", e.log.String())
				}
				e.proxy.SetChaos(false)
				for _, c := range conns {
					_ = c.Close()
				}
				counts := e.proxy.Counts()
				faults := 0
				for _, n := range counts {
					faults += n
				}
				if faults == 0 {
					t.Fatal("no fault injected")
				}
				reconnects := metricValue(t, reg, metricHandshakes, map[string]string{"type": "reconnect", "result": "ok"})
				resent := metricValue(t, reg, metricResent, nil)
				if reconnects == 0 {
					t.Fatal("no reconnect happened")
				}
				t.Logf("%d sessions × %d bytes, faults %v, reconnects %v, server resent %v bytes",
					sessions, total, counts, reconnects, resent)
			})
		}
	}
}

// TestHalfOpenTakeover pins the original implementation's deadlock: the
// server writes into a transport that went silent until its writer is
// stuck in Write and the resend buffer backs up; the client notices, comes
// back on a new transport, and the server must take over at once, closing
// the stuck socket and resending exactly what the client missed.
func TestHalfOpenTakeover(t *testing.T) {
	for _, kind := range []string{"tcp", "ws"} {
		t.Run(kind, func(t *testing.T) {
			const resend = DefaultResendBuffer
			e := newEnv(t, kind, ServerOptions{Encrypt: true, ResendBuffer: resend},
				&legacytest.Options{SocketBuffer: 32 << 10})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := DialWith(ctx, e.dial, &DialOptions{Encrypt: true, RetryInterval: 5 * time.Millisecond, ReadIdleTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := e.srv.Accept()
			if err != nil {
				t.Fatal(err)
			}
			s := sess.(*Conn)
			total := 4 << 20
			werr := make(chan error, 1)
			go func() {
				src := stream(99)
				buf := make([]byte, 32<<10)
				for sent := 0; sent < total; sent += len(buf) {
					_, _ = src.Read(buf)
					if _, err := s.Write(buf); err != nil {
						werr <- err
						return
					}
				}
				werr <- nil
			}()
			// Read a little, then black-hole the link and wait until the
			// server's writer is stuck and half the resend buffer is queued.
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			want := stream(99)
			got := mustRead(t, c, 256<<10)
			exp := make([]byte, len(got))
			_, _ = want.Read(exp)
			if !bytes.Equal(got, exp) {
				t.Fatal("prefix differs")
			}
			c.mu.Lock()
			old := c.cur
			c.mu.Unlock()
			if e.proxy.Strike(legacytest.Blackhole) == 0 {
				t.Fatal("no link to strike")
			}
			// Drain what was in flight so the client's idle timer can fire
			// only once the link is truly silent.
			var stuck *transport
			waitFor(t, func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				stuck = s.cur
				return s.writeCount-s.sentMark >= resend/2
			}, "server writer stuck on the silent socket")
			if stuck == nil {
				t.Fatal("server already detached")
			}
			c.mu.Lock()
			early := c.cur != old
			c.mu.Unlock()
			if early {
				t.Fatal("client reconnected before the server got stuck")
			}
			rest := make([]byte, total-len(got))
			if _, err := io.ReadFull(c, rest); err != nil {
				t.Fatalf("read after takeover: %v\n%s", err, e.log.String())
			}
			exp = make([]byte, len(rest))
			_, _ = want.Read(exp)
			if !bytes.Equal(rest, exp) {
				t.Fatal("data after takeover differs")
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			select {
			case <-stuck.dead:
			default:
				t.Fatal("stuck transport still alive")
			}
			c.mu.Lock()
			moved := c.cur != old
			c.mu.Unlock()
			if !moved {
				t.Fatal("client never reconnected")
			}
		})
	}
}
