package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/resume"
)

// clientHooks are the optional per-session observers of a gateway dial.
type clientHooks struct {
	addr          string                                                            // dial this host:port instead of the gateway (a fault proxy)
	direct        bool                                                              // dial from 127.0.0.1 instead of the rotating source addresses
	dial          func(ctx context.Context, network, addr string) (net.Conn, error) // opens the transports, if set (implies direct)
	onStateChange func(resume.State)
	registerer    prometheus.Registerer // client-side metrics of this session
}

// dialOptions returns the resume client options of a run.
func (b *bench) dialOptions(transport string, h *clientHooks) *resume.DialOptions {
	o := &resume.DialOptions{
		ServerKey:  b.cfg.serverKey,
		Suite:      resume.SuiteAESGCM,
		Proxy:      "direct",
		AlwaysSeal: b.cfg.alwaysSeal,
	}
	if b.cfg.suite == "chacha" {
		o.Suite = resume.SuiteChaChaPoly
	}
	switch {
	case h != nil && h.dial != nil:
		o.DialContext = h.dial
	case h == nil || !h.direct:
		o.DialContext = b.dialTCP
	}
	if transport == "wss" {
		o.TLSConfig = &tls.Config{RootCAs: b.roots, MinVersion: tls.VersionTLS12}
	}
	if h != nil {
		o.OnStateChange = h.onStateChange
		o.Registerer = h.registerer
	}
	return o
}

// dialGateway opens one resumable session to the route of up.
func (b *bench) dialGateway(ctx context.Context, transport string, up upstreamKind, h *clientHooks) (*resume.Conn, error) {
	if transport == "wss" && b.roots == nil {
		return nil, fmt.Errorf("dualbench: no CA for the gateway's wss certificate: none found in its data directory; use -ca FILE")
	}
	host := b.gwAddr
	if h != nil && h.addr != "" {
		host = h.addr
	}
	c, err := resume.Dial(ctx, transport+"://"+host+b.routePath(up), b.dialOptions(transport, h))
	if err != nil {
		return nil, fmt.Errorf("dualbench: gateway dial: %w", err)
	}
	return c, nil
}

// gatewaySystem returns the gateway under test over transport.
func (b *bench) gatewaySystem(transport string) *system {
	return &system{name: "gateway", transport: transport, pid: b.gwPID,
		dial: func(ctx context.Context, up upstreamKind) (net.Conn, error) {
			return b.dialGateway(ctx, transport, up, nil)
		}}
}
