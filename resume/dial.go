package resume

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/dualgate/dualgate/internal/cork"
	"github.com/dualgate/dualgate/internal/proxydial"
)

// dialTransport opens one transport to the gateway.
func (cl *clientSide) dialTransport(ctx context.Context) (Transport, error) {
	u := cl.u
	switch u.Scheme {
	case "ws", "wss":
		c, err := cl.dialNet(ctx, u.Scheme == "wss")
		if err != nil {
			return nil, err
		}
		t, err := dialWebSocket(ctx, c, u, cl.opts.HTTPHeader)
		if err != nil {
			c.Close()
			var ce *CloseError
			if errors.As(err, &ce) {
				return nil, ce
			}
			return nil, fmt.Errorf("resume: dial %s: %w", u.Redacted(), err)
		}
		return t, nil
	case "tcp", "tls":
		c, err := cl.dialNet(ctx, u.Scheme == "tls")
		if err != nil {
			return nil, err
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

// dialNet opens the TCP connection to the gateway (through a proxy if one
// is configured) and, if secure, runs the TLS handshake on it.
func (cl *clientSide) dialNet(ctx context.Context, secure bool) (net.Conn, error) {
	u := cl.u
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if secure {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	c, err := cl.netDial(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("resume: dial %s: %w", u.Redacted(), err)
	}
	if !secure {
		return c, nil
	}
	cfg := cl.opts.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if len(cfg.NextProtos) == 0 && (u.Scheme == "wss") {
		cfg.NextProtos = []string{"http/1.1"}
	}
	tc := tls.Client(cork.New(c), cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("resume: dial %s: TLS: %w", u.Redacted(), err)
	}
	return tc, nil
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
