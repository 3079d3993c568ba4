package resume

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flynn/noise"
)

func BenchmarkSealOpen(b *testing.B) {
	for _, suite := range []Suite{SuiteChaChaPoly, SuiteAESGCM} {
		b.Run(suite.String(), func(b *testing.B) {
			key, _ := GenerateKey()
			ch, msg1, _ := startClientHandshake(clientHello{version: 1, suite: suite, pattern: PatternNN}, helloPayload{window: DefaultWindow}, nil, nil, rand.Reader)
			h, _ := parseClientHello(msg1)
			sh, _, _ := readClientHello(h, nil, &key.kp, rand.Reader)
			msg2, sres, _ := sh.writeServerHello(serverPayload{window: DefaultWindow})
			_, cres, err := ch.readServerHello(msg2)
			if err != nil {
				b.Fatal(err)
			}
			pt := appendFrame(nil, &frame{typ: frameData, payload: make([]byte, blockSize)})
			ct := make([]byte, 0, len(pt)+tagLen)
			out := make([]byte, 0, len(pt))
			b.SetBytes(blockSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ct, _ = sealFrame(cres.send, ct[:0], pt)
				if out, err = sres.recv.Decrypt(out[:0], nil, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkStream(b *testing.B) {
	ts := newTestServer(b, benchOpts())
	for _, url := range []string{ts.tcpURL(), ts.wsURL()} {
		name := "tcp"
		if url[:2] == "ws" {
			name = "ws"
		}
		b.Run(name, func(b *testing.B) {
			c, sc := dialPair(b, ts, url, fastDial(""))
			chunk := make([]byte, 64<<10)
			done := make(chan error, 1)
			total := int64(b.N) * int64(len(chunk))
			go func() {
				_, err := io.CopyN(io.Discard, sc, total)
				done <- err
			}()
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkHandshake(b *testing.B) {
	ts := newTestServer(b, benchOpts())
	go func() {
		for {
			c, err := ts.srv.Accept()
			if err != nil {
				return
			}
			go c.Close()
		}
	}()
	o := fastDial(ts.key.PublicString())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := Dial(context.Background(), ts.tcpURL(), o)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func BenchmarkResume(b *testing.B) {
	ts := newTestServer(b, benchOpts())
	rs := rawNew(b, ts, PatternNN)
	ts.acceptOne(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ch, msg := resumeMsg(b, rs.id, rs.secret, uint64(i+1), nil)
		t := rawTransport(b, ts)
		if err := t.WriteMessage(ctx, msg); err != nil {
			b.Fatal(err)
		}
		ans, err := t.ReadMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		_, res, err := ch.readServerHello(ans)
		if err != nil {
			b.Fatal(err)
		}
		ct, _ := sealFrame(res.send, nil, appendFrame(nil, &frame{typ: frameConfirm}))
		if err := t.WriteMessage(ctx, ct); err != nil {
			b.Fatal(err)
		}
	}
}

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (srv *Server) detachedCount() int {
	srv.mu.Lock()
	list := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		list = append(list, s)
	}
	srv.mu.Unlock()
	n := 0
	for _, s := range list {
		s.mu.Lock()
		if s.state == StateDetached {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

// BenchmarkIdleSession reports the heap held per idle session on the server
// side, attached (byte-stream transport open, nothing in flight) and
// detached, excluding goroutine stacks and kernel socket buffers.
func BenchmarkIdleSession(b *testing.B) {
	for _, detached := range []bool{false, true} {
		name := "attached"
		if detached {
			name = "detached"
		}
		b.Run(name, func(b *testing.B) {
			const n = 500
			ts := newTestServer(b, benchOpts())
			var ms runtime.MemStats
			runtime.GC()
			runtime.GC() // twice: pooled blocks survive one GC in the victim cache
			runtime.ReadMemStats(&ms)
			before, stackBefore := ms.HeapAlloc, ms.StackInuse
			var raws []*rawSession
			for i := 0; i < n; i++ {
				rs := rawNew(b, ts, PatternNN)
				// A large message first, so that any buffer kept after
				// traffic would show in the figure.
				rs.send(b, &frame{typ: frameData, flags: flagFIN, payload: make([]byte, 60000)})
				if rs.t.rb != nil { // the test client's last message buffer
					msgPool.Put(rs.t.rb)
					rs.t.rb = nil
				}
				raws = append(raws, rs)
				c := ts.acceptOne(b)
				if _, err := io.ReadFull(c, make([]byte, 60000)); err != nil {
					b.Fatal(err)
				}
			}
			if detached {
				for _, r := range raws {
					r.t.Close(0, "")
				}
				raws = nil // the test client's state is gone: only the server's remains
				waitFor(b, func() bool { return ts.srv.detachedCount() == n })
			}
			time.Sleep(100 * time.Millisecond)
			runtime.GC()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			// Attached: an upper bound, as it includes the test client's
			// side of each session (keys, transport) in the same process.
			per := float64(int64(ms.HeapAlloc)-int64(before)) / n
			runtime.KeepAlive(raws)
			if f := os.Getenv("RESUME_HEAPPROFILE"); f != "" {
				w, _ := os.Create(f + "." + name)
				pprof.WriteHeapProfile(w)
				w.Close()
			}
			for i := 0; i < b.N; i++ {
			}
			b.ReportMetric(per, "heap-bytes/session")
			// Stacks: the server's reader goroutine per attached session (and,
			// for attached, nothing on the raw test client, which has none).
			b.ReportMetric(float64(int64(ms.StackInuse)-int64(stackBefore))/n, "stack-bytes/session")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func benchOpts() *ServerOptions {
	k, _ := GenerateKey()
	o := fastOpts(k)
	o.MaxSessionsPerIP = 1 << 20
	o.PingInterval, o.DeadTimeout = 10*time.Second, 30*time.Second
	return o
}

// BenchmarkX25519 compares the DH function of the handshake (dhX25519) with
// flynn/noise's DH25519: a key generation plus one DH is what each side of
// an NN handshake does.
func BenchmarkX25519(b *testing.B) {
	for _, dh := range []struct {
		name string
		fn   noise.DHFunc
	}{{"noise", noise.DH25519}, {"resume", dhX25519{}}} {
		peer, _ := dh.fn.GenerateKeypair(rand.Reader)
		b.Run("GenerateKeypair/"+dh.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dh.fn.GenerateKeypair(rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("DH/"+dh.name, func(b *testing.B) {
			kp, _ := dh.fn.GenerateKeypair(rand.Reader)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dh.fn.DH(kp.Private, peer.Public); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNoiseHandshake runs both sides of a first handshake in memory
// (client hello, server hello, resume secret): the crypto of one new
// session without transports, per pattern.
func BenchmarkNoiseHandshake(b *testing.B) {
	key, _ := GenerateKey()
	for _, p := range []Pattern{PatternNN, PatternNK} {
		b.Run(p.String(), func(b *testing.B) {
			var pinned []byte
			if p == PatternNK {
				pinned = key.Public()
			}
			b.ReportAllocs()
			for b.Loop() {
				ch, msg1, err := startClientHandshake(clientHello{version: 1, suite: SuiteAESGCM, pattern: p}, helloPayload{window: DefaultWindow}, nil, pinned, rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				h, err := parseClientHello(msg1)
				if err != nil {
					b.Fatal(err)
				}
				sh, _, err := readClientHello(h, nil, &key.kp, rand.Reader)
				if err != nil {
					b.Fatal(err)
				}
				msg2, sres, err := sh.writeServerHello(serverPayload{window: DefaultWindow})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := deriveResumeSecret(sres.hash); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ch.readServerHello(msg2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSession is the life of one short session, both sides in this
// process, as dualbench's sessions scenario runs it: Dial (upgrade and
// handshake), one byte echoed by the server's application, Close (the close
// exchange). Its CPU per op is the sum of a client's and a server's.
func BenchmarkSession(b *testing.B) {
	for _, name := range []string{"tcp", "ws"} {
		b.Run(name, func(b *testing.B) {
			ts := newTestServer(b, benchOpts())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer ts.srv.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ts.srv.Accept()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer c.Close()
						buf := make([]byte, 1)
						if _, err := io.ReadFull(c, buf); err != nil {
							return
						}
						if _, err := c.Write(buf); err != nil {
							return
						}
						c.Read(buf) //nolint:errcheck // EOF once the client closes
					}()
				}
			}()
			url := ts.tcpURL()
			if name == "ws" {
				url = ts.wsURL()
			}
			o := fastDial("")
			o.PingInterval, o.DeadTimeout = 10*time.Second, 30*time.Second
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(8) // 16 workers on 2 cores, like dualbench's default
			cpu0 := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				buf := []byte{0x42}
				for pb.Next() {
					c, err := Dial(ctx, url, o)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Write(buf); err != nil {
						b.Error(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Error(err)
					}
					c.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU returns the CPU time (user and system) of this process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
