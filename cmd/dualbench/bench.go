package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/dualgate/dualgate/resume"
)

// bench is the environment of one run: the upstreams, the gateway under
// test (started or given by -addr), the baselines when a scenario needs
// them, and the client-side dialing helpers.
type bench struct {
	cfg  *config
	log  io.Writer // progress and notes (stderr or io.Discard)
	tmp  string
	sink *upstream
	echo *upstream

	gw     *gatewayProc // nil with -addr
	gwAddr string
	gwPID  int // 0: unknown (CPU and RSS are not reported)
	roots  *x509.CertPool
	caFile string // where roots came from

	base *baselineProc // nil until startBaselines

	srcs    []netip.Addr
	srcNext atomic.Uint64

	httpc *http.Client // plain HTTP to the gateway (metrics)

	liftedFlags []string // limits dualbench raised on the started gateway
}

// newBench prepares everything a scenario needs except the baselines.
// verify makes the sink check the DGBENCH1 pattern of every stream.
func newBench(ctx context.Context, cfg *config, log io.Writer, verify bool) (_ *bench, err error) {
	b := newClientBench(cfg, log)
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.tmp, err = os.MkdirTemp("", "dualbench-"); err != nil {
		return nil, fmt.Errorf("dualbench: %w", err)
	}
	if b.sink, err = startUpstream(upstreamSink, cfg.sinkListen, verify); err != nil {
		return nil, err
	}
	if b.echo, err = startUpstream(upstreamEcho, cfg.echoListen, false); err != nil {
		return nil, err
	}
	if cfg.addr != "" {
		b.gwAddr, b.gwPID = cfg.addr, cfg.pid
	} else {
		fmt.Fprintf(log, "dualbench: preparing gateway %s\n", cfg.gateway)
		bin, err := gatewayBinary(ctx, cfg.gateway, b.tmp)
		if err != nil {
			return nil, err
		}
		args := []string{
			"-route", cfg.routeSink + "=tcp://" + b.sink.addr(),
			"-route", cfg.routeEcho + "=tcp://" + b.echo.addr(),
			"-route", cfg.routeBuiltin + "=builtin:echo",
		}
		if cfg.scenario == "idle" {
			lift := liftLimits(gatewayFlagNames(ctx, bin), cfg.gatewayFlags, cfg.sessions)
			if len(lift) > 0 {
				fmt.Fprintf(log, "dualbench: raising gateway limits for %d sessions: %s\n", cfg.sessions, strings.Join(lift, " "))
				b.liftedFlags = lift
			}
			args = append(args, lift...)
		}
		args = append(args, cfg.gatewayFlags...)
		if b.gw, err = startGateway(ctx, bin, b.tmp, args); err != nil {
			return nil, err
		}
		b.gwAddr, b.gwPID = b.gw.addr, b.gw.pid()
		fmt.Fprintf(log, "dualbench: gateway pid %d on %s (log %s)\n", b.gwPID, b.gwAddr, b.gw.logPath)
	}
	if cfg.pin && cfg.serverKey == "" && b.gw != nil {
		// The gateway keeps its key as DATA_DIR/server.key (32 raw bytes).
		raw, err := os.ReadFile(filepath.Join(b.gw.dataDir, "server.key"))
		if err != nil {
			return nil, fmt.Errorf("dualbench: -pin: %w", err)
		}
		k, err := resume.NewKey(raw)
		if err != nil {
			return nil, fmt.Errorf("dualbench: -pin: %w", err)
		}
		cfg.serverKey = k.PublicString()
	}
	caFile := cfg.caFile
	if caFile == "" && b.gw != nil {
		caFile = findDevCA(b.gw.dataDir)
	}
	b.caFile = caFile
	if err := b.loadRoots(); err != nil {
		return nil, err
	}
	return b, nil
}

// loadRoots reads b.caFile (if any) into b.roots.
func (b *bench) loadRoots() error {
	cfg, caFile := b.cfg, b.caFile
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil && cfg.caFile != "" {
			return fmt.Errorf("dualbench: -ca: %w", err)
		}
		if err == nil {
			b.roots = x509.NewCertPool()
			if !b.roots.AppendCertsFromPEM(pem) {
				return fmt.Errorf("dualbench: no certificate in %s", caFile)
			}
		}
	}
	return nil
}

// newClientBench returns a bench that only dials: no upstreams, no gateway
// process (the idle worker processes use it).
func newClientBench(cfg *config, log io.Writer) *bench {
	b := &bench{cfg: cfg, log: log, httpc: noKeepAliveClient(10 * time.Second)}
	for i := range cfg.sources {
		b.srcs = append(b.srcs, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}))
	}
	return b
}

// startBaselines starts the baseline child process (once).
func (b *bench) startBaselines(ctx context.Context) error {
	if b.base != nil {
		return nil
	}
	p, err := startBaselineProc(ctx, b.sink.addr(), b.echo.addr())
	if err != nil {
		return err
	}
	b.base = p
	fmt.Fprintf(b.log, "dualbench: baselines pid %d: tcp %s, ws %s, wss %s\n", p.pid(), p.addrs.TCPSink, p.addrs.WS, p.addrs.WSS)
	return nil
}

// close stops everything newBench and startBaselines started. It reports
// an unexpected gateway exit.
func (b *bench) close() error {
	var errs []error
	if b.base != nil {
		b.base.stop()
	}
	if b.gw != nil {
		if err := b.gw.stop(); err != nil {
			errs = append(errs, fmt.Errorf("%w\n--- gateway log (tail) ---\n%s", err, b.gw.logTail(4096)))
		}
	}
	if b.sink != nil {
		b.sink.Close()
	}
	if b.echo != nil {
		b.echo.Close()
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
	return errors.Join(errs...)
}

// upstreamFor returns the upstream of a kind.
func (b *bench) upstreamFor(k upstreamKind) *upstream {
	if k == upstreamEcho {
		return b.echo
	}
	return b.sink
}

// nextSource returns the next client source address (round robin).
func (b *bench) nextSource() netip.Addr {
	return b.srcs[int(b.srcNext.Add(1)-1)%len(b.srcs)]
}

// dialTCP dials addr from the next source address.
func (b *bench) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: b.nextSource().AsSlice()}}
	return d.DialContext(ctx, network, addr)
}

// httpClient returns an HTTP client for WebSocket upgrades that dials from
// the rotating source addresses and trusts roots for wss.
func (b *bench) httpClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:       b.dialTCP,
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}}
}

// system is one server under test: the gateway or a baseline, reached over
// one transport.
type system struct {
	name      string // gateway | ws-bridge | tcp-proxy
	transport string // ws | wss | tcp
	pid       int    // server process, 0 if unknown
	dial      func(ctx context.Context, up upstreamKind) (net.Conn, error)
}

// label names the system and transport, e.g. "gateway/wss".
func (s *system) label() string { return s.name + "/" + s.transport }

// tcpProxy returns the bare TCP proxy baseline.
func (b *bench) tcpProxy() *system {
	return &system{name: "tcp-proxy", transport: "tcp", pid: b.base.pid(),
		dial: func(ctx context.Context, up upstreamKind) (net.Conn, error) {
			addr := b.base.addrs.TCPSink
			if echoes(up) {
				addr = b.base.addrs.TCPEcho
			}
			return b.dialTCP(ctx, "tcp", addr)
		}}
}

// wsBridge returns the plain WebSocket bridge baseline over transport.
func (b *bench) wsBridge(transport string) *system {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(b.base.addrs.CertPEM))
	hc := b.httpClient(roots)
	host := b.base.addrs.WS
	if transport == "wss" {
		host = b.base.addrs.WSS
	}
	return &system{name: "ws-bridge", transport: transport, pid: b.base.pid(),
		dial: func(ctx context.Context, up upstreamKind) (net.Conn, error) {
			path := "/bench-sink"
			if echoes(up) {
				path = "/bench-echo"
			}
			c, _, err := websocket.Dial(ctx, transport+"://"+host+path, &websocket.DialOptions{HTTPClient: hc})
			if err != nil {
				return nil, fmt.Errorf("dualbench: ws-bridge dial: %w", err)
			}
			c.SetReadLimit(maxBaselineMessage)
			return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
		}}
}

// routePath returns the gateway route of an upstream kind.
func (b *bench) routePath(up upstreamKind) string {
	switch up {
	case upstreamEcho:
		return b.cfg.routeEcho
	case upstreamBuiltin:
		return b.cfg.routeBuiltin
	}
	return b.cfg.routeSink
}

// noKeepAliveClient returns a plain HTTP client that keeps no idle
// connections (and so no goroutines) between requests.
func noKeepAliveClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
}

// findDevCA returns the development CA the gateway created in its data
// directory (a file ca.pem, preferably in a directory named dev), or "".
func findDevCA(dataDir string) string {
	var found []string
	filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error { //nolint:errcheck // best effort
		if err == nil && !d.IsDir() && d.Name() == "ca.pem" {
			found = append(found, path)
		}
		return nil
	})
	for _, f := range found {
		if filepath.Base(filepath.Dir(f)) == "dev" {
			return f
		}
	}
	if len(found) > 0 {
		return found[0]
	}
	return ""
}
