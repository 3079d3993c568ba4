package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/dualgate/dualgate/internal/faultproxy"
)

// echo serves one connection on a loopback listener by echoing it.
func echo() (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
	return ln.Addr().String(), func() { _ = ln.Close(); <-done }
}

// dialThrough connects to p, with a deadline on every read and write.
func dialThrough(p *faultproxy.Proxy) net.Conn {
	c, err := net.DialTimeout("tcp", p.Addr(), 10*time.Second)
	if err != nil {
		panic(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// A budget cuts a stream at a chosen byte and then injects a fault.
func Example_budget() {
	target, stop := echo()
	defer stop()
	p, err := faultproxy.New(target, &faultproxy.Options{
		Budget: func() faultproxy.Budget { return faultproxy.TotalBudget(10, faultproxy.Reset) },
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	c := dialThrough(p)
	defer c.Close()
	// 4 bytes up and 4 back leave 2 of the 10: "hello" goes through
	// cut after "he", and the link is reset.
	_, _ = c.Write([]byte("ping"))
	buf := make([]byte, 4)
	_, _ = io.ReadFull(c, buf)
	fmt.Printf("%s\n", buf)
	_, _ = c.Write([]byte("hello"))
	_, err = io.ReadAll(c)
	fmt.Println(errors.Is(err, syscall.ECONNRESET))
	fmt.Println(p.Stats().Faults)
	// Output:
	// ping
	// true
	// map[reset:1]
}

// Strike injects a fault into every live link on demand; WaitConns waits
// for the links first.
func ExampleProxy_Strike() {
	target, stop := echo()
	defer stop()
	p, err := faultproxy.New(target, nil)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	c := dialThrough(p)
	defer c.Close()
	if err := p.WaitConns(context.Background(), 1); err != nil {
		panic(err)
	}
	fmt.Println(p.Strike(faultproxy.Drop))
	_, err = c.Read(make([]byte, 1))
	fmt.Println(err)
	// Output:
	// 1
	// EOF
}
