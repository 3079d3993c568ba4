// Command e2eserver is the small Go server the browser tests of web/ run
// while the gateway does not yet serve the resume protocol on a route: the
// real resume.Server with an in-process, message-preserving echo on /stream,
// the embedded demo page and bundle on /, plain HTTP and TLS (a self-signed
// certificate made at start) on one TCP port, and /raw-echo, a plain
// WebSocket echo without the protocol (the baseline of npm run bench).
//
// It prints one JSON line {"addr": "127.0.0.1:PORT", "key": "<base64url>"}
// on stdout when ready, and exits on SIGINT/SIGTERM or when stdin closes.
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
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
	"github.com/dualgate/dualgate/resume"
	"github.com/dualgate/dualgate/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2eserver:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:0", "listen `ADDR`")
	ttl := flag.Duration("detached-ttl", resume.DefaultDetachedTTL, "detached session TTL")
	ping := flag.Duration("ping-interval", resume.DefaultPingInterval, "server PING interval")
	dead := flag.Duration("dead-timeout", resume.DefaultDeadTimeout, "server dead-peer timeout")
	window := flag.Int("window", resume.DefaultWindow, "receive window per session in bytes")
	verbose := flag.Bool("v", false, "debug logs on stderr")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	key, err := resume.GenerateKey()
	if err != nil {
		return err
	}
	srv, err := resume.NewServer(&resume.ServerOptions{Key: key, Window: *window, DetachedTTL: *ttl, PingInterval: *ping, DeadTimeout: *dead, Logger: log})
	if err != nil {
		return err
	}
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { // the test harness closes stdin to stop us, even if it dies
		io.Copy(io.Discard, os.Stdin) //nolint:errcheck // EOF or error both mean stop
		stop()
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); echoAll(ctx, srv, log) }()

	mux := http.NewServeMux()
	mux.Handle("/", web.NewHandler(&web.Options{ServerKey: key.PublicString(), Route: "/stream"}))
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{resume.Subprotocol}})
		if err != nil {
			return
		}
		if c.Subprotocol() != resume.Subprotocol {
			c.Close(4012, "not a dualgate client") //nolint:errcheck // refusing anyway
			return
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		info := resume.TransportInfo{Route: "/stream", RemoteAddr: ap, Secure: r.TLS != nil}
		if r.TLS != nil {
			// This process terminated the TLS: with 1.3, NN clients may use
			// plain-in-TLS frames (docs/protocol.md §5.7).
			info.TLSVersion = r.TLS.Version
		}
		if err := srv.ServeTransport(ctx, resume.WebSocketTransport(c), info); err != nil {
			log.Debug("e2eserver: transport", "err", err)
		}
	})
	// A plain WebSocket echo without the protocol: the baseline of npm run bench.
	mux.HandleFunc("/raw-echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow() //nolint:errcheck // best effort
		c.SetReadLimit(64 << 20)
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, b); err != nil {
				return
			}
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	sl := &splitListener{Listener: ln, tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}, conns: make(chan net.Conn), done: make(chan struct{})}
	go sl.run()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := hs.Serve(sl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("e2eserver: serve", "err", err)
		}
	}()

	line, _ := json.Marshal(map[string]string{"addr": ln.Addr().String(), "key": key.PublicString()})
	fmt.Println(string(line))

	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)  //nolint:errcheck // best effort at exit
	srv.Shutdown(sctx) //nolint:errcheck // best effort at exit
	srv.Close()        //nolint:errcheck // best effort at exit
	wg.Wait()
	return nil
}

// echoAll accepts sessions and echoes each message with its type until the
// client closes; the echo's Close answers the client's CLOSE.
func echoAll(ctx context.Context, srv *resume.Server, log *slog.Logger) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				typ, b, err := c.ReadMessage(ctx)
				if err != nil {
					code := resume.CloseStatus(err)
					log.Debug("e2eserver: session read", "err", err, "code", code)
					c.Close() //nolint:errcheck // answers the client's CLOSE
					return
				}
				if err := c.WriteMessage(ctx, typ, b); err != nil {
					log.Debug("e2eserver: session write", "err", err)
					return
				}
			}
		}()
	}
}

// splitListener hands out plain connections as they are and TLS connections
// (first byte 0x16) as *tls.Conn, so net/http serves both on one port.
type splitListener struct {
	net.Listener
	tlsConfig *tls.Config
	conns     chan net.Conn
	done      chan struct{}
	once      sync.Once
}

func (l *splitListener) run() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.once.Do(func() { close(l.done) })
			return
		}
		go func() {
			br := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a failed peek closes the conn
			first, err := br.Peek(1)
			c.SetReadDeadline(time.Time{}) //nolint:errcheck // as above
			if err != nil {
				c.Close()
				return
			}
			var out net.Conn = &peekedConn{Conn: c, r: br}
			if first[0] == 0x16 {
				out = tls.Server(out, l.tlsConfig)
			}
			select {
			case l.conns <- out:
			case <-l.done:
				c.Close()
			}
		}()
	}
}

func (l *splitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *splitListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// selfSigned makes a P-256 certificate for the loopback names the tests use.
func selfSigned() (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "dualgate e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "dualgate.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}
