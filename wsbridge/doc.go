// Package wsbridge implements the gateway's WebSocket entry point and the
// bridge from each resumable session to its upstream service.
//
// # Routes
//
// A route maps an exact URL path to an upstream (see ParseRoute):
//
//	/stream=tcp://127.0.0.1:9000         a TCP service
//	/db=unix:///run/app.sock?proxy=v2    a unix-socket service, PROXY v2 header first
//	/feed=wss://feed.internal/ws         a WebSocket service (message boundaries kept)
//	/stream=builtin:echo                 the built-in echo (the embedded default)
//
// # Handler
//
// Handler upgrades requests on route paths to WebSocket (coder/websocket,
// subprotocol dualgate.v1, origin allowlist, read limit of one protocol
// message) and hands the transport to resume.Server.ServeTransport with the
// route, the client address (r.RemoteAddr, already the real client address
// behind the sniffing listener) and whether the request arrived over TLS. A
// client that does not offer dualgate.v1 is closed with 4012; an unknown path
// gets 404.
//
// # Bridge
//
// A Bridger connects each new session (from Serve's Accept loop, or Bridge) to
// its route's upstream: one upstream connection per session, opened when the
// session starts and closed when it ends. Sessions are net.Conns; resume
// sessions additionally carry messages and close codes, so message boundaries
// and text/binary types survive towards WebSocket upstreams, while byte
// streams (tcp, unix, legacy sessions) simply ignore them. How a bridge ends:
//
//	upstream cannot be dialled   session closed with 4010 and a short reason
//	upstream ends (EOF, close)   what it sent is delivered, then 4011
//	client closes cleanly        upstream told (CloseWrite / close frame),
//	                             its last bytes forwarded, then both closed
//	session ends otherwise       upstream closed (FIN / close frame)
//	Drain                        session closed with 1001 after what the client
//	                             sent was written upstream; upstream closed cleanly
//	Close                        everything closed at once (1001)
//
// Each direction copies one message (or one buffer of a byte stream) at a
// time with pooled buffers and writes it before reading the next, so a slow
// upstream stops the bridge reading from the session, whose receive window
// then stops the client, and a slow client stops the bridge reading from the
// upstream, whose TCP window then stops the backend. Memory per bridge is
// two buffers plus at most one message in flight each way (bounded by
// Options.MaxMessageSize towards WebSocket upstreams and the session's
// maximum message size from the client).
//
// # Metrics
//
// With Options.Registerer: dualgate_wsbridge_bytes_total{route,direction},
// dualgate_wsbridge_upstream_dial_errors_total{route,reason},
// dualgate_wsbridge_bridges_active{route} and
// dualgate_wsbridge_bridges_ended_total{route,reason}.
package wsbridge
