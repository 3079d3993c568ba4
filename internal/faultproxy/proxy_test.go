package faultproxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

func TestForwardBothWays(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), &faultproxy.Options{RandomChunks: true, BufferSize: 4 << 10})
	client, server := link(t, p, tg)
	up := make([]byte, 1<<20)
	down := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range up {
		up[i], down[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, w := range []struct {
		c   net.Conn
		buf []byte
	}{{client, up}, {server, down}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := w.c.Write(w.buf)
			errs <- err
		}()
	}
	gotUp, gotDown := make([]byte, len(up)), make([]byte, len(down))
	if _, err := io.ReadFull(server, gotUp); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, gotDown); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		t.Fatal("bytes changed on the way")
	}
	// A FIN from one peer closes the whole link.
	_ = client.Close()
	wantEOF(t, "server", server)
	waitConns(t, p, 0)
	if s := p.Stats(); s.Accepted != 1 || len(s.Faults) != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestStrike(t *testing.T) {
	tests := []struct {
		fault       faultproxy.Fault
		live, held  int
		check       func(t *testing.T, client, server net.Conn)
		afterClose  func(t *testing.T, client, server net.Conn)
		strikeAgain bool // a second strike of the same kind finds the link
	}{
		{fault: faultproxy.Drop, check: func(t *testing.T, client, server net.Conn) {
			wantEOF(t, "client", client)
			wantEOF(t, "server", server)
		}},
		{fault: faultproxy.Reset, check: func(t *testing.T, client, server net.Conn) {
			wantReset(t, "client", client)
			wantReset(t, "server", server)
		}},
		{fault: faultproxy.HalfOpen, held: 1, check: func(t *testing.T, client, server net.Conn) {
			wantEOF(t, "client", client)
			if _, err := server.Write([]byte("lost")); err != nil {
				t.Fatal(err)
			}
			wantSilence(t, "server", server)
		}, afterClose: func(t *testing.T, _, server net.Conn) {
			wantClosed(t, "held server", server)
		}},
		{fault: faultproxy.Blackhole, held: 2, check: silentBothWays, afterClose: func(t *testing.T, client, server net.Conn) {
			wantClosed(t, "held client", client)
			wantClosed(t, "held server", server)
		}},
		{fault: faultproxy.Discard, live: 1, check: silentBothWays, afterClose: func(t *testing.T, client, server net.Conn) {
			wantEOF(t, "client", client)
			wantEOF(t, "server", server)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			tg := newTarget(t)
			p, err := faultproxy.New(tg.addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			client, server := link(t, p, tg)
			send(t, client, server, "ping")
			send(t, server, client, "pong")
			if n := p.Strike(tt.fault); n != 1 {
				t.Fatalf("struck %d links", n)
			}
			if n := p.Strike(tt.fault); n != 0 {
				t.Fatalf("struck %d links again", n)
			}
			tt.check(t, client, server)
			s := p.Stats()
			if s.Live != tt.live || s.Held != tt.held || p.Conns() != tt.live {
				t.Fatalf("live %d (Conns %d), held %d; want %d, %d", s.Live, p.Conns(), s.Held, tt.live, tt.held)
			}
			if len(s.Faults) != 1 || s.Faults[tt.fault] != 1 {
				t.Fatalf("faults %v", s.Faults)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if tt.afterClose != nil {
				tt.afterClose(t, client, server)
			}
		})
	}
}

// silentBothWays checks that what either peer writes never arrives.
func silentBothWays(t *testing.T, client, server net.Conn) {
	t.Helper()
	for _, c := range []net.Conn{client, server} {
		if _, err := c.Write([]byte("lost")); err != nil {
			t.Fatal(err)
		}
	}
	wantSilence(t, "server", server)
	wantSilence(t, "client", client)
}

func TestDiscardThenReset(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), nil)
	client, server := link(t, p, tg)
	if p.Strike(faultproxy.Discard) != 1 {
		t.Fatal("not discarding")
	}
	if _, err := client.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	wantSilence(t, "server", server)
	// A discarding link is still live: it can be struck again, and the
	// peer closing it is passed on.
	if p.Strike(faultproxy.Reset) != 1 {
		t.Fatal("discarding link not reset")
	}
	wantReset(t, "client", client)
	wantReset(t, "server", server)
	if f := p.Stats().Faults; f[faultproxy.Discard] != 1 || f[faultproxy.Reset] != 1 {
		t.Fatalf("faults %v", f)
	}
}

func TestBlackholeBlocksWriters(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), &faultproxy.Options{SocketBuffer: 16 << 10})
	client, server := link(t, p, tg)
	p.Strike(faultproxy.Blackhole)
	// Nobody reads the silent socket: the server's writes must stall.
	_ = server.SetWriteDeadline(time.Now().Add(2 * time.Second))
	n, err := server.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("wrote %d bytes into a black hole: %v", n, err)
	}
	wantSilence(t, "client", client)
}

func TestBudget(t *testing.T) {
	type step struct {
		up   bool // client → server, else server → client
		send int
		want int // bytes that arrive; fewer than send means the fault struck
	}
	tests := []struct {
		name   string
		budget faultproxy.Budget
		steps  []step
	}{
		{name: "total", budget: faultproxy.TotalBudget(10, faultproxy.Drop),
			steps: []step{{up: true, send: 6, want: 6}, {send: 6, want: 4}}},
		{name: "exact total passes", budget: faultproxy.TotalBudget(10, faultproxy.Drop),
			steps: []step{{up: true, send: 10, want: 10}, {send: 1, want: 0}}},
		{name: "zero", budget: faultproxy.TotalBudget(0, faultproxy.Reset),
			steps: []step{{up: true, send: 5, want: 0}}},
		{name: "up", budget: faultproxy.Budget{Total: faultproxy.Unlimited, Up: 5, Down: faultproxy.Unlimited, Fault: faultproxy.Drop},
			steps: []step{{send: 100, want: 100}, {up: true, send: 8, want: 5}}},
		{name: "down", budget: faultproxy.Budget{Total: faultproxy.Unlimited, Up: faultproxy.Unlimited, Down: 7, Fault: faultproxy.HalfOpen},
			steps: []step{{up: true, send: 100, want: 100}, {send: 9, want: 7}}},
		{name: "unlimited", budget: faultproxy.NoBudget(),
			steps: []step{{up: true, send: 1000, want: 1000}, {send: 1000, want: 1000}}},
		{name: "discard", budget: faultproxy.TotalBudget(3, faultproxy.Discard),
			steps: []step{{up: true, send: 5, want: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t)
			p := newProxy(t, tg.addr(), &faultproxy.Options{Budget: func() faultproxy.Budget { return tt.budget }})
			client, server := link(t, p, tg)
			struck := false
			for _, s := range tt.steps {
				from, to := server, client
				if s.up {
					from, to = client, server
				}
				if _, err := from.Write(make([]byte, s.send)); err != nil {
					t.Fatal(err)
				}
				got := 0
				if s.want > 0 {
					n, err := io.ReadFull(to, make([]byte, s.want))
					if err != nil {
						t.Fatalf("%d of %d bytes arrived: %v", n, s.want, err)
					}
					got = n
				}
				if s.want < s.send {
					// Nothing more arrives: the fault struck.
					_ = to.SetReadDeadline(time.Now().Add(silence))
					if n, _ := to.Read(make([]byte, 1)); n != 0 {
						t.Fatalf("%d bytes passed, want %d", got+n, s.want)
					}
					struck = true
					break
				}
			}
			faults := p.Stats().Faults
			if struck && faults[tt.budget.Fault] != 1 || !struck && len(faults) != 0 {
				t.Fatalf("struck %v, faults %v", struck, faults)
			}
		})
	}
}

func TestSetBudget(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), nil)
	client, server := link(t, p, tg)
	send(t, client, server, "free") // no budget function: nothing drawn
	draws := 0
	p.SetBudget(func() faultproxy.Budget {
		draws++
		return faultproxy.TotalBudget(8, faultproxy.Drop)
	})
	send(t, client, server, "1234") // draws: 4 of 8 left
	p.SetBudget(nil)                // keeps the drawn budget
	send(t, server, client, "5678")
	if _, err := client.Write([]byte("9")); err != nil {
		t.Fatal(err)
	}
	wantEOF(t, "server", server)
	if draws != 1 || p.Stats().Faults[faultproxy.Drop] != 1 {
		t.Fatalf("draws %d, faults %v", draws, p.Stats().Faults)
	}
}

func TestStrikeRandom(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), &faultproxy.Options{Rand: rand.New(rand.NewPCG(7, 7))})
	const n = 8
	for range n {
		link(t, p, tg)
	}
	waitConns(t, p, n)
	if k := p.StrikeRandom(faultproxy.Drop, 0); k != 0 {
		t.Fatalf("probability 0 struck %d", k)
	}
	k := p.StrikeRandom(faultproxy.Drop, 0.5)
	waitConns(t, p, n-k)
	if got := p.Stats().Faults[faultproxy.Drop]; got != int64(k) {
		t.Fatalf("struck %d, counted %d", k, got)
	}
	if k2 := p.StrikeRandom(faultproxy.Reset, 1); k2 != n-k {
		t.Fatalf("probability 1 struck %d of %d", k2, n-k)
	}
	if k := p.Strike(faultproxy.Fault(99)); k != 0 {
		t.Fatalf("invalid fault struck %d", k)
	}
}

func TestWaitConns(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), nil)
	done := make(chan error, 1)
	go func() { done <- p.WaitConns(context.Background(), 3) }()
	for range 3 {
		dial(t, p)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.WaitConns(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a timeout, got %v", err)
	}
	go func() { done <- p.WaitConns(context.Background(), 4) }()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("wait across Close: %v", err)
	}
	if err := p.WaitConns(context.Background(), 0); err != nil {
		t.Fatalf("no links after Close: %v", err)
	}
}

func TestWaitConnsDefaultTimeout(t *testing.T) {
	tg := newTarget(t)
	p := newProxy(t, tg.addr(), &faultproxy.Options{WaitTimeout: 20 * time.Millisecond})
	if err := p.WaitConns(context.Background(), 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a timeout, got %v", err)
	}
}

func TestTap(t *testing.T) {
	tg := newTarget(t)
	type seen struct {
		info  faultproxy.LinkInfo
		d     faultproxy.Direction
		chunk string
	}
	ch := make(chan seen, 16)
	p := newProxy(t, tg.addr(), &faultproxy.Options{Tap: func(info faultproxy.LinkInfo) faultproxy.TapFunc {
		if info.ID == 2 {
			return nil
		}
		return func(d faultproxy.Direction, b []byte) bool {
			ch <- seen{info, d, string(b)}
			return false // the first chunk is enough
		}
	}})
	for id := uint64(1); id <= 2; id++ {
		client, server := link(t, p, tg)
		send(t, server, client, "hello")
		send(t, server, client, "again")
		send(t, client, server, "up")
		if id == 2 {
			break
		}
		for _, want := range []seen{{d: faultproxy.ToClient, chunk: "hello"}, {d: faultproxy.ToTarget, chunk: "up"}} {
			got := <-ch
			if got.info.ID != id || got.d != want.d || got.chunk != want.chunk || got.info.Accepted.IsZero() ||
				got.info.Client.String() != client.LocalAddr().String() || got.info.Target.String() != tg.addr() {
				t.Fatalf("tap saw %+v, want %+v on link %d", got, want, id)
			}
		}
	}
	select {
	case s := <-ch:
		t.Fatalf("tap called again: %+v", s)
	default:
	}
}

func TestDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	p := newProxy(t, dead, nil)
	c := dial(t, p)
	wantEOF(t, "client", c)
	if s := p.Stats(); s.Accepted != 1 || s.DialErrors != 1 || s.Live != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNewListenError(t *testing.T) {
	if _, err := faultproxy.New("127.0.0.1:1", &faultproxy.Options{ListenAddr: "256.0.0.1:0"}); err == nil {
		t.Fatal("listened on a bad address")
	}
}

func TestNames(t *testing.T) {
	want := []string{"drop", "reset", "half-open", "blackhole", "discard"}
	for i, f := range faultproxy.Faults() {
		if f.String() != want[i] {
			t.Errorf("%d: %q, want %q", i, f, want[i])
		}
	}
	for _, tt := range []struct{ got, want string }{
		{faultproxy.Fault(9).String(), "Fault(9)"},
		{faultproxy.ToTarget.String(), "to-target"},
		{faultproxy.ToClient.String(), "to-client"},
		{faultproxy.Direction(5).String(), "Direction(5)"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}
