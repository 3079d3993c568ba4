package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestVerifyingSink(t *testing.T) {
	u, err := startUpstream(upstreamSink, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	send := func(id uint64, data []byte) {
		c, err := net.Dial("tcp", u.addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(appendPrelude(nil, id)) //nolint:errcheck // checked by the sink's view
		c.Write(data)                   //nolint:errcheck
		c.Close()
	}
	good := whole(1, 50000)
	send(1, good)
	bad := whole(2, 50000)
	bad[40000] ^= 0xff
	send(2, bad)
	waitFor(t, "both streams", func() bool {
		a, ok1 := u.stream(1)
		b, ok2 := u.stream(2)
		return ok1 && ok2 && a.done && (b.done || b.err != nil)
	})
	a, _ := u.stream(1)
	if a.err != nil || a.bytes != 50000 {
		t.Fatalf("good stream: %+v", a)
	}
	b, _ := u.stream(2)
	if b.err == nil || !strings.Contains(b.err.Error(), "byte 40000") || b.bytes > 40000 {
		t.Fatalf("corrupt stream: %+v", b)
	}
	if _, ok := u.stream(3); ok {
		t.Fatal("unknown stream reported")
	}
}

func TestEchoUpstream(t *testing.T) {
	u, err := startUpstream(upstreamEcho, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.Dial("tcp", u.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := whole(5, 200000)
	go c.Write(data) //nolint:errcheck // the read below checks
	got := make([]byte, len(data))
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // bound
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo: %v", err)
	}
	if u.bytes.Load() != int64(len(data)) || u.active.Load() != 1 {
		t.Fatalf("bytes %d active %d", u.bytes.Load(), u.active.Load())
	}
}

// TestBaselinesMoveBytes runs both baselines in process and checks that
// each delivers bytes to the sink and echoes them back, over ws and wss.
func TestBaselinesMoveBytes(t *testing.T) {
	sink, err := startUpstream(upstreamSink, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	echo, err := startUpstream(upstreamEcho, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	bs, err := startBaselines(sink.addr(), echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(bs.addrs.CertPEM)) {
		t.Fatal("no certificate")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialers := map[string]func(path string, tcpAddr string) net.Conn{
		"tcp": func(_, tcpAddr string) net.Conn {
			c, err := net.Dial("tcp", tcpAddr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"ws": func(path, _ string) net.Conn {
			c, _, err := websocket.Dial(ctx, "ws://"+bs.addrs.WS+path, &websocket.DialOptions{HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			return websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		},
		"wss": func(path, _ string) net.Conn {
			c, _, err := websocket.Dial(ctx, "wss://"+bs.addrs.WSS+path, &websocket.DialOptions{HTTPClient: hc})
			if err != nil {
				t.Fatal(err)
			}
			return websocket.NetConn(context.Background(), c, websocket.MessageBinary)
		},
	}
	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			data := whole(11, 100000)
			before := sink.bytes.Load()
			c := dial("/bench-sink", bs.addrs.TCPSink)
			if _, err := c.Write(data); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "bytes at the sink", func() bool { return sink.bytes.Load()-before == int64(len(data)) })
			c.Close()
			e := dial("/bench-echo", bs.addrs.TCPEcho)
			defer e.Close()
			go e.Write(data) //nolint:errcheck // the read checks
			got := make([]byte, len(data))
			e.SetReadDeadline(time.Now().Add(30 * time.Second)) //nolint:errcheck // bound
			if _, err := io.ReadFull(e, got); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("echo through %s: %v", name, err)
			}
		})
	}
}
