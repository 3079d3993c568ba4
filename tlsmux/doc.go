// Package tlsmux implements TLS termination for the TLS kind of Dualgate's
// sniffing listener, and the second sniff of the decrypted bytes.
//
// # Data path
//
//	listener.For(sniff.KindTLS) ──► handshake goroutine (bounded, HandshakeTimeout)
//	    │ ALPN offers http/1.1 and acme-tls/1 (RFC 8737)
//	    ├─ failure ─► closed, counted by reason
//	    ├─ acme-tls/1 ─► closed right after the handshake: the certificate
//	    │                (answered by the ACME manager's GetCertificate) was the answer
//	    └─ success ─► client IP recorded in the IPCache, then a listener.Listener
//	                  re-sniffs the decrypted bytes ─► Mux.For(HTTP | Legacy | Stream)
//
// A client that sends nothing after its handshake for SniffTimeout goes to
// HTTP, where the HTTP server's own header timeout applies.
//
// # r.TLS for handlers
//
// net/http fills http.Request.TLS only for connections that are a bare
// *tls.Conn, and Mux hands out wrapped ones (they replay the re-sniffed
// bytes). Set http.Server.ConnContext to ConnContext and wrap the handler in
// Handler, and every request that arrived over TLS has r.TLS set:
//
//	srv := &http.Server{Handler: tlsmux.Handler(mux), ConnContext: tlsmux.ConnContext}
//
// # Metrics
//
// With Options.Registerer set, tlsmux registers
//
//	dualgate_tls_handshakes_total{version,alpn}     completed handshakes
//	dualgate_tls_handshake_failures_total{reason}   timeout | eof | not-tls | remote-alert | handshake-error
//	dualgate_tls_handshaking                        handshakes in progress
//
// and the re-sniffing listener's metrics with the const label layer="tls".
package tlsmux
