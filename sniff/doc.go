// Package sniff implements the classification of the first bytes of a
// connection on Dualgate's shared port.
//
// Classify looks at a byte prefix and says which protocol the peer speaks,
// without reading, allocating or keeping state, so callers can feed it a
// growing prefix as bytes arrive (a TLS ClientHello written one byte at a
// time classifies exactly like one written at once).
//
// # Kinds
//
//	KindTLS     16 03 xx              a TLS handshake record (RFC 8446 §5.1)
//	KindHTTP    "GET " "POST " ...    an HTTP/1.x request line (RFC 9112 §3)
//	KindLegacy  00 | FF               the legacy raw protocol: new session | reconnect
//	KindStream  44 47 53 31 ("DGS1")  the resumable-stream byte-stream preamble
//	                                  (docs/protocol.md §2)
//
// # Rejections
//
// A prefix that can never become one of the kinds yields a *RejectError with a
// Reason: an SSLv2-style hello (high bit set, as crypto/tls refuses it), the
// HTTP/2 cleartext preface ("PRI * HTTP/2.0", h2c is not served), a PROXY
// protocol header that reached the classifier (the listener strips trusted
// headers before classifying, so this one came from an untrusted peer) and
// anything else ("garbage").
//
// # Undecided prefixes
//
// While the prefix could still become more than one thing ("D" may be DELETE or
// DGS1) Classify returns ErrNeedMore. It never needs more than MaxPrefixLen
// bytes: with that many it always decides, and a decision never changes when
// more bytes are appended.
//
// # Ambiguous connections
//
// A client that sends nothing before the sniff deadline cannot be classified.
// IPCache remembers, for a short time, the client IPs that recently completed
// a TLS handshake; the listener hands a silent connection from such an IP to
// TLS (the server then waits for the ClientHello), and every other one to
// plain HTTP.
package sniff
