package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The two baselines the gateway is measured against, both serving the same
// sink and echo upstreams:
//
//   - a bare TCP proxy: accept, dial the upstream, io.Copy both ways (on
//     Linux io.Copy between two *net.TCPConn splices, so this is the ceiling
//     of any user-space proxy);
//   - a plain WebSocket bridge: coder/websocket Accept, websocket.NetConn,
//     dial the upstream, io.Copy both ways: no inner encryption, no resume.
//     It serves ws on one port and wss (a self-signed certificate) on another.
//
// They run in a child process (dualbench baseline-server) so that their CPU
// time and memory are measured like the gateway's.

// baselineAddrs is what the baseline server reports to its parent.
type baselineAddrs struct {
	TCPSink string `json:"tcp_sink"`
	TCPEcho string `json:"tcp_echo"`
	WS      string `json:"ws"`
	WSS     string `json:"wss"`
	CertPEM string `json:"cert_pem"`
}

// baselineServer holds the listeners of both baselines. Close stops them and
// waits for every connection goroutine.
type baselineServer struct {
	addrs   baselineAddrs
	lns     []net.Listener
	httpSrv []*http.Server

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// maxBaselineMessage bounds a message of the WebSocket baseline.
const maxBaselineMessage = 2 << 20

// startBaselines starts both baselines in this process in front of the
// given upstream addresses.
func startBaselines(sinkAddr, echoAddr string) (*baselineServer, error) {
	b := &baselineServer{conns: map[net.Conn]struct{}{}}
	fail := func(err error) (*baselineServer, error) {
		b.Close()
		return nil, fmt.Errorf("dualbench: baseline: %w", err)
	}
	for _, up := range []struct {
		dst  string
		addr *string
	}{{sinkAddr, &b.addrs.TCPSink}, {echoAddr, &b.addrs.TCPEcho}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		b.lns = append(b.lns, ln)
		*up.addr = ln.Addr().String()
		b.wg.Add(1)
		go b.tcpProxyLoop(ln, up.dst)
	}

	mux := http.NewServeMux()
	mux.Handle("/bench-sink", b.wsHandler(sinkAddr))
	mux.Handle("/bench-echo", b.wsHandler(echoAddr))
	cert, certPEM, err := selfSignedCert()
	if err != nil {
		return fail(err)
	}
	b.addrs.CertPEM = string(certPEM)
	for _, secure := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
		b.httpSrv = append(b.httpSrv, srv)
		if secure {
			b.addrs.WSS = ln.Addr().String()
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		} else {
			b.addrs.WS = ln.Addr().String()
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on Close
		}()
	}
	return b, nil
}

// track registers c for Close; it reports false (and closes c) when the
// server is already closed.
func (b *baselineServer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		c.Close()
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *baselineServer) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

func (b *baselineServer) tcpProxyLoop(ln net.Listener, dst string) {
	defer b.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.pipe(c, dst)
		}()
	}
}

// pipe dials dst and copies both ways with io.Copy until either side ends.
func (b *baselineServer) pipe(c net.Conn, dst string) {
	if !b.track(c) {
		return
	}
	defer b.untrack(c)
	defer c.Close()
	up, err := net.Dial("tcp", dst)
	if err != nil {
		return
	}
	if !b.track(up) {
		return
	}
	defer b.untrack(up)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(c, up) //nolint:errcheck // ends with either side
		c.Close()
	}()
	io.Copy(up, c) //nolint:errcheck // ends with either side
	up.Close()
	<-done
}

// wsHandler upgrades to a plain WebSocket and bridges it to dst.
func (b *baselineServer) wsHandler(dst string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{})
		if err != nil {
			return
		}
		ws.SetReadLimit(maxBaselineMessage)
		b.wg.Add(1)
		defer b.wg.Done()
		nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
		b.pipe(nc, dst)
	})
}

// Close stops both baselines and waits for their goroutines.
func (b *baselineServer) Close() error {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	for _, ln := range b.lns {
		ln.Close()
	}
	for _, s := range b.httpSrv {
		s.Close()
	}
	b.wg.Wait()
	return nil
}

// selfSignedCert returns a fresh ECDSA P-256 certificate for 127.0.0.1 and
// its PEM, for the wss baseline.
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "dualbench baseline"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, certPEM, nil
}

// baselineServerMain is the hidden "baseline-server" subcommand: it serves
// both baselines, prints their addresses as one JSON line on stdout and runs
// until stdin ends (its parent went away) or SIGTERM.
func baselineServerMain(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("dualbench baseline-server", flag.ContinueOnError)
	sink := fs.String("sink", "", "sink upstream address")
	echo := fs.String("echo", "", "echo upstream address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, a := range []string{*sink, *echo} {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("dualbench: baseline-server: bad upstream %q: %w", a, err)
		}
	}
	b, err := startBaselines(*sink, *echo)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := json.NewEncoder(stdout).Encode(b.addrs); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stdin) //nolint:errcheck // only its end matters
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}
