package resumetest

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, p *Proxy) net.Conn {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestProxyForwardsAndKills(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c := dial(t, p)
	msg := bytes.Repeat([]byte("abc"), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through proxy: %v", err)
	}
	if n := p.KillAll(); n != 1 {
		t.Fatalf("killed %d", n)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after kill succeeded")
	}
}

func TestProxyBudgetCutsMidStream(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	p.SetBudget(func() int64 { return 1000 })
	c := dial(t, p)
	go c.Write(make([]byte, 5000))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= 1000 {
		t.Fatalf("%d bytes came back through a 1000-byte budget", n)
	}
	if _, killed, _ := p.Stats(); killed != 1 {
		t.Fatalf("killed %d", killed)
	}
}

func TestProxyBlackhole(t *testing.T) {
	p := NewProxy(t, echoServer(t))
	c := dial(t, p)
	p.WaitConns(t, 1)
	if p.BlackholeRandom(1) != 1 {
		t.Fatal("not blackholed")
	}
	c.Write([]byte("lost"))
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 4))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("want silence (timeout), got %v", err)
	}
	if p.Conns() != 1 {
		t.Fatal("blackholed connection was closed")
	}
}
