package resume

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/coder/websocket"

	"github.com/dualgate/dualgate/internal/proxydial"
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
// environment proxy (internal/proxydial: SOCKS5 with username/password, or
// HTTP CONNECT).
func (cl *clientSide) netDial(ctx context.Context, network, address string) (net.Conn, error) {
	if cl.opts.DialContext != nil {
		return cl.opts.DialContext(ctx, network, address)
	}
	var pu *url.URL
	switch cl.opts.Proxy {
	case "direct":
	case "":
		var err error
		if pu, err = proxydial.FromEnvironment(cl.u); err != nil {
			return nil, fmt.Errorf("resume: proxy from environment: %w", err)
		}
	default:
		var err error
		if pu, err = url.Parse(cl.opts.Proxy); err != nil {
			return nil, fmt.Errorf("resume: proxy URL: %w", err)
		}
	}
	d, err := proxydial.New(pu, &proxydial.Options{Logger: cl.opts.Logger, HandshakeTimeout: cl.opts.HandshakeTimeout})
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	return d.DialContext(ctx, network, address)
}
