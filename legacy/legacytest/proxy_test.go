package legacytest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pair dials the proxy and returns both ends of the proxied connection.
func pair(t *testing.T, opts *Options) (p *Proxy, client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p, err = New(ln.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client, err = net.DialTimeout("tcp", p.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	for _, c := range []net.Conn{client, server} {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	}
	return p, client, server
}

func roundTrip(t *testing.T, a, b net.Conn) {
	t.Helper()
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("forwarded %q, %v", buf, err)
	}
}

func TestForwardAndFaults(t *testing.T) {
	for _, f := range []Fault{Drop, Reset, HalfOpen, Blackhole} {
		t.Run(f.String(), func(t *testing.T) {
			p, client, server := pair(t, nil)
			roundTrip(t, client, server)
			roundTrip(t, server, client)
			if n := p.Strike(f); n != 1 {
				t.Fatalf("struck %d links", n)
			}
			buf := make([]byte, 1)
			switch f {
			case Drop, Reset, HalfOpen:
				if _, err := client.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("client side not closed: %v", err)
				}
			case Blackhole:
				_, _ = client.Write([]byte("lost"))
				_ = client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := client.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("black-holed client read: %v", err)
				}
			}
			switch f {
			case Drop, Reset:
				if _, err := server.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("server side not closed: %v", err)
				}
			case HalfOpen, Blackhole:
				// The server hears nothing: no data, no FIN.
				_ = server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := server.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("silent server side read: %v", err)
				}
			}
			if got := p.Counts()[f]; got != 1 {
				t.Fatalf("counts %v", p.Counts())
			}
		})
	}
}

func TestBudget(t *testing.T) {
	p, client, server := pair(t, &Options{MinBytes: 10, MaxBytes: 10, Faults: []Fault{Drop}})
	roundTrip(t, client, server) // chaos off: no budget spent
	p.SetChaos(true)
	if _, err := client.Write([]byte("0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(server)
	if string(got) != "0123456789" {
		t.Fatalf("forwarded %q before the fault, want 10 bytes", got)
	}
	if p.Counts()[Drop] != 1 {
		t.Fatalf("counts %v", p.Counts())
	}
}

func TestEchoExchange(t *testing.T) {
	_, client, server := pair(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(server, server)
	}()
	if err := EchoExchange(client, 7, 1<<20, 64<<10); err != nil {
		t.Fatal(err)
	}
	// A corrupting echo is caught.
	_ = client.Close()
	<-done
	_, client2, server2 := pair(t, nil)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := server2.Read(buf)
			if n > 0 {
				buf[0] ^= 1
				_, _ = server2.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	if err := EchoExchange(client2, 7, 1<<16, 64<<10); err == nil {
		t.Fatal("corruption not detected")
	}
	_ = client2.Close()
}
