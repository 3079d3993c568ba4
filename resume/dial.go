package resume

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/coder/websocket"
	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"
)

// dialTransport opens one transport to the gateway.
func (cl *clientSide) dialTransport(ctx context.Context) (Transport, error) {
	u := cl.u
	switch u.Scheme {
	case "ws", "wss":
		tr := &http.Transport{
			DialContext:       cl.netDial,
			TLSClientConfig:   cl.opts.TLSConfig,
			ForceAttemptHTTP2: false,
		}
		defer tr.CloseIdleConnections()
		c, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
			HTTPClient:   &http.Client{Transport: tr},
			HTTPHeader:   cl.opts.HTTPHeader,
			Subprotocols: []string{Subprotocol},
		})
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("resume: dial %s: %w", u.Redacted(), err)
		}
		if c.Subprotocol() != Subprotocol {
			c.CloseNow() //nolint:errcheck
			return nil, &CloseError{Code: CloseNotDualgate, Reason: "server did not accept the dualgate.v1 subprotocol"}
		}
		return WebSocketTransport(c), nil
	case "tcp", "tls":
		c, err := cl.netDial(ctx, "tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("resume: dial %s: %w", u.Redacted(), err)
		}
		if u.Scheme == "tls" {
			cfg := cl.opts.TLSConfig.Clone()
			if cfg == nil {
				cfg = &tls.Config{}
			}
			if cfg.ServerName == "" {
				cfg.ServerName = u.Hostname()
			}
			tc := tls.Client(c, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, fmt.Errorf("resume: TLS: %w", err)
			}
			c = tc
		}
		stop := ctxDeadline(ctx, c.SetWriteDeadline)
		_, err = c.Write([]byte(StreamPreamble))
		stop()
		c.SetWriteDeadline(timeZero) //nolint:errcheck
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("resume: write preamble: %w", err)
		}
		return newStreamTransport(c), nil
	}
	return nil, fmt.Errorf("resume: unsupported scheme %q", u.Scheme)
}

// netDial opens a network connection to address, through the configured or
// environment proxy. It is the seam that internal/proxydial replaces.
func (cl *clientSide) netDial(ctx context.Context, network, address string) (net.Conn, error) {
	if cl.opts.DialContext != nil {
		return cl.opts.DialContext(ctx, network, address)
	}
	pu, err := cl.proxyFor(address)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	if pu == nil {
		return d.DialContext(ctx, network, address)
	}
	switch pu.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if pu.User != nil {
			pw, _ := pu.User.Password()
			auth = &proxy.Auth{User: pu.User.Username(), Password: pw}
		}
		sd, err := proxy.SOCKS5("tcp", pu.Host, auth, &d)
		if err != nil {
			return nil, fmt.Errorf("resume: socks5 proxy: %w", err)
		}
		return sd.(proxy.ContextDialer).DialContext(ctx, network, address)
	case "http", "https":
		return dialConnect(ctx, &d, pu, address, cl.opts.TLSConfig)
	}
	return nil, fmt.Errorf("resume: unsupported proxy scheme %q", pu.Scheme)
}

// proxyFor returns the proxy for a connection to address, or nil.
func (cl *clientSide) proxyFor(address string) (*url.URL, error) {
	switch cl.opts.Proxy {
	case "direct":
		return nil, nil
	case "":
	default:
		u, err := url.Parse(cl.opts.Proxy)
		if err != nil {
			return nil, fmt.Errorf("resume: proxy URL: %w", err)
		}
		return u, nil
	}
	scheme := "http"
	if cl.u.Scheme == "wss" || cl.u.Scheme == "tls" {
		scheme = "https"
	}
	pu, err := httpproxy.FromEnvironment().ProxyFunc()(&url.URL{Scheme: scheme, Host: address})
	if err != nil || pu != nil {
		return pu, err
	}
	all := os.Getenv("ALL_PROXY")
	if all == "" {
		all = os.Getenv("all_proxy")
	}
	if all == "" {
		return nil, nil
	}
	// NO_PROXY was applied above only when HTTP(S)_PROXY is set.
	cfg := &httpproxy.Config{HTTPProxy: all, HTTPSProxy: all, NoProxy: firstEnv("NO_PROXY", "no_proxy")}
	return cfg.ProxyFunc()(&url.URL{Scheme: scheme, Host: address})
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// dialConnect opens a tunnel through an HTTP CONNECT proxy.
func dialConnect(ctx context.Context, d *net.Dialer, pu *url.URL, address string, tlsCfg *tls.Config) (net.Conn, error) {
	host := pu.Host
	if pu.Port() == "" {
		if pu.Scheme == "https" {
			host = net.JoinHostPort(pu.Hostname(), "443")
		} else {
			host = net.JoinHostPort(pu.Hostname(), "80")
		}
	}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("resume: dial proxy: %w", err)
	}
	if pu.Scheme == "https" {
		cfg := tlsCfg.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg.ServerName = pu.Hostname()
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("resume: proxy TLS: %w", err)
		}
		c = tc
	}
	stop := ctxDeadline(ctx, c.SetDeadline)
	defer func() {
		stop()
		c.SetDeadline(timeZero) //nolint:errcheck
	}()
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", address, address)
	if pu.User != nil {
		pw, _ := pu.User.Password()
		fmt.Fprintf(&b, "Proxy-Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pw)))
	}
	b.WriteString("\r\n")
	if _, err := c.Write([]byte(b.String())); err != nil {
		c.Close()
		return nil, fmt.Errorf("resume: proxy CONNECT: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("resume: proxy CONNECT: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("resume: proxy CONNECT: %s", resp.Status)
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("resume: proxy CONNECT: unexpected data after the response")
	}
	return c, nil
}
