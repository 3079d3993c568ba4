// Package listener implements Dualgate's sniffing listener: one TCP port
// whose connections are classified by their first bytes (package sniff) and
// handed out through one net.Listener per kind.
//
// # Data path
//
//	inner.Accept ──► global limit ──► sniff goroutine (bounded by MaxSniffing)
//	                                     │ deadline SniffTimeout covers both:
//	                                     ├─ PROXY v1/v2 header (trusted peers only)
//	                                     ├─ per-IP limit on the real client address
//	                                     └─ sniff.Classify on the first bytes
//	                                           ├─ kind ─► For(kind).Accept()
//	                                           ├─ silent ─► IPCache hit ? TLS : HTTP
//	                                           └─ rejected ─► closed, reason logged and counted
//
// The accept loop never waits for a client: every connection is classified in
// its own goroutine, so a silent or slow client never delays another one. The
// accept loop only waits when MaxSniffing connections are being classified at
// once (the kernel backlog then holds new ones), and backs off on accept
// errors like http.Server.Serve (5 ms doubling up to 1 s).
//
// # Connections
//
// Every connection handed out is a *Conn. It replays the peeked bytes before
// reading from the socket, passes CloseWrite and deadlines through, and its
// RemoteAddr is the real client address: the source of a PROXY header from a
// trusted proxy, else the socket peer. A connection counts against the global
// and per-IP limits until it is closed.
//
// # PROXY protocol
//
// Peers in Options.TrustedProxies may send a PROXY protocol header (v1 or v2,
// parsed by github.com/pires/go-proxyproto); it is read within the same sniff
// deadline and is optional for them. A PROXY header from any other peer is
// rejected (reason "untrusted-proxy-header").
//
// # Metrics
//
// With Options.Registerer set, the listener registers (const label layer):
//
//	dualgate_listener_connections_total{kind}      connections handed out per kind
//	dualgate_listener_sniff_outcomes_total{outcome} classified | ambiguous_via_cache |
//	                                                ambiguous_to_plain | rejected
//	dualgate_listener_rejections_total{reason}     closed connections by reason
//	dualgate_listener_open_connections             connections counted against MaxConns
//	dualgate_listener_sniffing                     connections being classified
package listener
