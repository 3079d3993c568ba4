package resume

// Tests of the resume path's ordering: what happens between a new
// transport's dial and the first retransmitted byte (issue 8's resume
// latency). They assert order, never speed.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"
)

// TestServerReplaysRightAfterConfirm: the first frame the server sends on a
// resumed transport is the retransmission, starting at the offset the
// CONFIRM announced, with nothing else asked of the client.
func TestServerReplaysRightAfterConfirm(t *testing.T) {
	for _, from := range []uint64{0, 1000} {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		opts := fastOpts(k)
		opts.PingInterval, opts.DeadTimeout = time.Minute, 2*time.Minute // no PING may come first
		ts := newTestServer(t, opts)
		rs := rawNew(t, ts, PatternNN)
		sc := ts.acceptOne(t)
		msg := make([]byte, 3*maxDataPayload)
		rand.Read(msg) //nolint:errcheck
		if err := sc.WriteMessage(ctxT(t), MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		// Never acknowledged: the server holds it all when the transport ends.
		rs.t.Close(0, "")
		waitFor(t, func() bool { return sc.State() == StateDetached })

		ch, hello := resumeMsg(t, rs.id, rs.secret, 1, nil)
		tr, ans := exchange(t, ts, hello)
		sp, res, err := ch.readServerHello(ans)
		if err != nil {
			t.Fatal(err)
		}
		if sp.delivered != 0 {
			t.Fatalf("server delivered %d, want 0", sp.delivered)
		}
		rs2 := &rawSession{id: rs.id, t: tr, res: res}
		rs2.send(t, &frame{typ: frameConfirm, num: from})
		next := from
		for next < uint64(len(msg)) {
			m, err := tr.ReadMessage(ctxT(t))
			if err != nil {
				t.Fatalf("at %d: %v", next, err)
			}
			pt, err := res.recv.Decrypt(nil, nil, m)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parseFrame(pt)
			if err != nil {
				t.Fatal(err)
			}
			if f.typ != frameData || f.num != next {
				t.Fatalf("CONFIRM(%d): got frame 0x%02x at %d, want DATA at %d", from, f.typ, f.num, next)
			}
			if !bytes.Equal(f.payload, msg[next:next+uint64(len(f.payload))]) {
				t.Fatalf("DATA at %d: wrong bytes", next)
			}
			next += uint64(len(f.payload))
		}
		tr.Close(0, "") // the server's cleanup ends the session
	}
}

// signalReader is a crypto/rand reader that reports each Read on reads.
type signalReader struct{ reads chan struct{} }

func (r signalReader) Read(p []byte) (int, error) {
	select {
	case r.reads <- struct{}{}:
	default:
	}
	return rand.Read(p)
}

// TestClientHelloComputedDuringDial: the client hello (its ephemeral key)
// is computed while the transport is being dialled, not after. The dialer
// here does not connect until the handshake has drawn its randomness, so a
// client that computed the hello only after the dial would time out.
func TestClientHelloComputedDuringDial(t *testing.T) {
	ts := newTestServer(t, nil)
	reads := make(chan struct{}, 1)
	var mu sync.Mutex
	var conns []net.Conn
	o := fastDial("")
	o.HandshakeTimeout = 20 * time.Second
	o.Rand = signalReader{reads}
	o.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		select {
		case <-reads:
		case <-ctx.Done():
			return nil, errors.New("the dial waited for the client hello")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	for _, url := range []string{ts.tcpURL(), ts.wsURL()} {
		c, sc := dialPair(t, ts, url, o)
		// Resume: the server's bytes written before the kill arrive after it.
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		conns = nil
		mu.Unlock()
		if _, err := sc.Write([]byte("after the kill")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 14)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after the kill" {
			t.Fatalf("%s: %q %v", url, buf, err)
		}
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
	}
}

// BenchmarkClientResume kills a Dial'd session's transport, queues a
// message on the server and reads it on the client: the client's resume
// path (dial, upgrade, handshake, CONFIRM) and the server's retransmission.
// dial-to-data-µs is from the new transport's dial to the message read.
func BenchmarkClientResume(b *testing.B) {
	for _, scheme := range []string{"ws", "tcp"} {
		b.Run(scheme, func(b *testing.B) {
			ts := newTestServer(b, benchOpts())
			var mu sync.Mutex
			var cur net.Conn
			var dialAt time.Time
			o := fastDial("")
			o.BackoffMin = time.Millisecond
			o.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				start := time.Now()
				var d net.Dialer
				c, err := d.DialContext(ctx, network, addr)
				mu.Lock()
				cur, dialAt = c, start
				mu.Unlock()
				return c, err
			}
			url := ts.tcpURL()
			if scheme == "ws" {
				url = ts.wsURL()
			}
			c, sc := dialPair(b, ts, url, o)
			msg := make([]byte, 4096)
			buf := make([]byte, len(msg))
			var total time.Duration
			created := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
			rtmetrics.Read(created)
			before := created[0].Value.Uint64()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				mu.Lock()
				cur.Close()
				mu.Unlock()
				if _, err := sc.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				mu.Lock()
				total += time.Since(dialAt)
				mu.Unlock()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "dial-to-data-µs")
			// Every goroutine started is a hand-off that may wait for a CPU.
			rtmetrics.Read(created)
			b.ReportMetric(float64(created[0].Value.Uint64()-before)/float64(b.N), "goroutines/op")
		})
	}
}
