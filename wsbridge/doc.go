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
// Handler upgrades requests on route paths to WebSocket
// (resume.UpgradeWebSocket, subprotocol dualgate.v1, origin allowlist) and
// hands the transport to resume.Server.StartTransport with the route, the
// client address (r.RemoteAddr, already the real client address behind the
// sniffing listener) and whether the request arrived over TLS; it returns
// after the handshake. A client that does not offer dualgate.v1 is closed
// with 4012; an unknown path gets 404.
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
// Idle bridges hold less: a TCP or unix upstream is read through its raw
// connection, so the pooled buffer is taken only when the socket has data
// and given back before waiting; the session is read into a 1 KiB buffer
// until a read fills it (byte-stream upstreams, then the pooled buffer), or
// with resume.Conn.AppendMessage into one buffer per bridge grown to the
// largest message (message upstreams), so no allocation per message.
// Between a resume session and a TCP or unix upstream or the built-in echo,
// each direction is a pump that copies what is there and then waits without a
// goroutine (resume.Conn.NotifyReadable) or with one parked on a minimal
// stack in a raw read (internal/rawio): an idle bridge holds no goroutine of
// its own. Other bridges run two goroutines: one per direction.
//
// # Sessions of other kinds
//
// Serve accepts from any Acceptor (resume.Server, legacy.Server, even a
// net.Listener). A *resume.Conn is adapted automatically; any other net.Conn
// is bridged as a byte stream, on the route that Options.SessionInfo reports
// for it (the gateway passes a converted legacy.SessionInfo) or else
// Options.DefaultRoute. Handler's upgraded connections go through one
// function (Handler.serve), the seam for serving a route in another mode such
// as legacy over WebSocket.
//
// # Shutdown
//
// Bridger.Drain first: clients are told 1001 after what they sent reached
// their upstream, and upstreams are closed cleanly. Then
// resume.Server.Shutdown (or Close), which refuses new sessions, ends what is
// left and makes Serve return; then Handler.Shutdown, which refuses new
// upgrades and waits for the transports (net/http does not wait for hijacked
// connections); then the HTTP servers. Close is the hard form of each.
//
// # Measurements
//
// On the 2-core development VM (Go 1.26, loopback, shared with other builds):
//
//	go test -run '^$' -bench . ./wsbridge
//	  BenchmarkBridgeTCP       ~150 MB/s (32 KiB writes, 4 loopback hops), 0 allocs/op
//	  BenchmarkBridgeMessages  ~400 MB/s (4 KiB messages), 1 alloc/op (the echo's copy)
//	  BenchmarkBridgeResume    ~200 MB/s (tcp), ~120 MB/s (ws) with 32 KiB messages,
//	                           client, protocol and echo included; 1.5 KB/op (tcp)
//	go test -run Heavy -v ./wsbridge
//	  1,000 concurrent sessions (ws and wss, tcp/unix/ws/echo upstreams) bridged at once
//	  64 MiB (ws) and 32 MiB (wss) echoed byte for byte across ~30-50 transport kills
//	  50 sessions stalled by a non-reading upstream: heap growth ~33 MiB in all
//	  (~680 KiB per session, client and gateway in one process), bounded by
//	  the resume windows, not by the 400 MiB the clients tried to send
//
// # Metrics
//
// With Options.Registerer: dualgate_wsbridge_bytes_total{route,direction},
// dualgate_wsbridge_upstream_dial_errors_total{route,reason},
// dualgate_wsbridge_bridges_active{route} and
// dualgate_wsbridge_bridges_ended_total{route,reason}.
package wsbridge
