// Package proxydial implements a TCP dialer that connects to its targets
// directly or through a forward proxy: SOCKS5 (RFC 1928) with optional
// username/password authentication (RFC 1929), or an HTTP proxy using the
// CONNECT method (RFC 9110, section 9.3.6) with optional Basic credentials
// (RFC 7617).
//
// It is the one place where Dualgate clients (resume.Dial for ws://, wss://,
// tcp:// and tls:// targets, and the legacy client) decide how a TCP
// connection reaches the network. Callers that speak TLS or WebSocket layer
// those on top of the returned net.Conn, so the proxy only ever sees an opaque
// tunnel.
//
// # Use with net/http and WebSockets
//
// For ws:// and wss:// targets, hand DialContext to an http.Transport
// (DialContext: d.DialContext) and leave Transport.Proxy nil: the tunnel is
// then opened here, with CONNECT rather than absolute-URI forwarding, which
// WebSockets need, and TLS for wss:// runs end to end inside it.
//
// # Proxy URLs
//
// A proxy is given as a URL:
//
//	socks5://user:pass@host:1080    SOCKS5; target names are resolved locally
//	socks5h://user:pass@host:1080   SOCKS5; target names are resolved by the proxy
//	http://user:pass@host:3128      HTTP CONNECT; credentials sent as Basic
//
// Credentials are optional. A missing port means 1080 for SOCKS5 and 80 for
// HTTP. https:// proxies (TLS to the proxy itself) are not supported.
//
// # Environment
//
// FromEnvironment selects the proxy for a target URL from the conventional
// variables (the lower-case form first, as net/http reads them): HTTPS_PROXY for https://
// and wss:// targets, HTTP_PROXY for http:// and ws:// targets, ALL_PROXY for
// every scheme without a more specific variable (and for tcp:// and tls://),
// and NO_PROXY for the exceptions. NO_PROXY matching and the CGI guard are
// those of golang.org/x/net/http/httpproxy, which net/http also uses; in
// particular "localhost" and loopback IP literals never use a proxy.
//
// # Deadlines
//
// Every wait (the TCP connect to the proxy, the SOCKS negotiation, the
// CONNECT request and response) is bounded by the context passed to
// DialContext and, when the context has no earlier deadline, by
// Options.HandshakeTimeout. Once DialContext returns, the connection carries
// no deadline.
//
// # Errors
//
// Errors start with "proxydial:" and wrap the underlying cause with %w. A
// proxy that rejects the credentials (HTTP 407, SOCKS5 authentication failure
// or no acceptable method) yields an error that matches ErrProxyAuth, so that
// reconnecting clients can stop retrying. A cancelled or expired context
// yields an error that matches ctx.Err().
package proxydial
