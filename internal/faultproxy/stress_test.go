package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// TestConcurrentFaults runs echo traffic over many links while budgets and
// on-demand strikes of every kind hit them, with Stats and Conns read
// concurrently: every byte that arrives is right, every fault is counted,
// and Close leaves nothing behind (goleak).
func TestConcurrentFaults(t *testing.T) {
	const links = 24
	tg := newTarget(t)
	var servers sync.WaitGroup
	servers.Add(1)
	go func() {
		defer servers.Done()
		for range links {
			var c net.Conn
			select {
			case c = <-tg.conns:
			case <-time.After(timeout):
				t.Error("target accepted too few connections")
				return
			}
			servers.Add(1)
			go func() {
				defer servers.Done()
				_ = c.SetDeadline(time.Now().Add(timeout))
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	var budgetStrikes atomic.Int64
	faults := faultproxy.Faults()
	p, err := faultproxy.New(tg.addr(), &faultproxy.Options{
		RandomChunks: true,
		BufferSize:   8 << 10,
		Budget: func() faultproxy.Budget {
			if rand.IntN(3) == 0 {
				return faultproxy.NoBudget()
			}
			budgetStrikes.Add(1)
			return faultproxy.Budget{Total: rand.Int64N(256 << 10), Up: rand.Int64N(256 << 10),
				Down: faultproxy.Unlimited, Fault: faults[rand.IntN(len(faults))]}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	const size = 192 << 10
	var clients sync.WaitGroup
	var complete atomic.Int64
	for i := range links {
		clients.Add(1)
		go func() {
			defer clients.Done()
			c, err := net.DialTimeout("tcp", p.Addr(), timeout)
			if errors.Is(err, syscall.ECONNRESET) {
				// A strike (or a budget of zero) reset the link between
				// the kernel's handshake and Go's check of the socket:
				// a fault that was asked for, counted by Stats.
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			// Short deadline: a silent link ends the exchange by timeout.
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			msg := bytes.Repeat([]byte{byte(i)}, size)
			go func() { _, _ = c.Write(msg) }()
			got, _ := io.ReadAll(io.LimitReader(c, size))
			if !bytes.Equal(got, msg[:len(got)]) {
				t.Errorf("link %d: corrupted echo", i)
			}
			if len(got) == size {
				complete.Add(1)
			}
		}()
	}
	var struck atomic.Int64
	stop := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			struck.Add(int64(p.StrikeRandom(faults[rand.IntN(len(faults))], 0.1)))
			s := p.Stats()
			if s.Live > links || s.Accepted > links {
				t.Errorf("stats %+v", s)
			}
		}
	}()
	clients.Wait()
	close(stop)
	chaos.Wait()
	s := p.Stats()
	var total int64
	for _, n := range s.Faults {
		total += n
	}
	if total < struck.Load() || total > struck.Load()+budgetStrikes.Load() {
		t.Errorf("faults %v (%d): %d struck on demand, %d budgets", s.Faults, total, struck.Load(), budgetStrikes.Load())
	}
	if s.Accepted != links {
		t.Errorf("accepted %d of %d", s.Accepted, links)
	}
	t.Logf("%d of %d echoes complete; faults %v", complete.Load(), links, s.Faults)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Live != 0 || s.Held != 0 {
		t.Fatalf("after Close: %+v", s)
	}
	servers.Wait()
}
