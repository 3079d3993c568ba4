// Package legacy serves, and dials, the older reconnecting stream protocol
// ("snet") that shipped in Go and C# game and mobile clients, so that
// Dualgate can carry those clients on its one port while new clients use
// the modern protocol (package resume). It is wire-compatible with snet.
//
// The protocol's cryptography is weak by today's standards: a 64-bit
// Diffie-Hellman group that can be broken offline, RC4 without dropped
// keystream, MD5 proofs, no integrity protection at all. The gateway
// therefore makes it opt-in, logs a warning when a Server starts, counts
// its sessions under dualgate_legacy_* metrics, and recommends it only
// inside TLS or wss. See docs/legacy.md for the weaknesses and how to
// migrate clients.
//
// # Wire format
//
// All integers are little-endian uint64. dh64 uses p = 2^64 − 59, g = 5;
// a public key of 0 is invalid (this package also refuses 1, p−1 and
// values ≥ p). The key is the 8 bytes LE64(secret); each side derives a
// read and a write RC4 stream from it, dropping no keystream.
//
// New session:
//
//	client → 0x00 ‖ clientPub
//	server → serverPub ‖ (LE64(id) XOR first 8 write-keystream bytes) ‖ challenge[8]
//	client → MD5(challenge ‖ key)            (mismatch: server closes, no reply)
//
// Server→client data therefore starts at write-keystream byte 8, client→
// server data at byte 0. Whether data is RC4-encrypted is configured, not
// negotiated; the ID is always encrypted.
//
// Reconnect:
//
//	client → 0xFF ‖ id ‖ clientWriteCount ‖ clientReadCount ‖ MD5(those 24 bytes ‖ key)
//	server → serverWriteCount ‖ serverReadCount ‖ challenge[8]   or 24 zero bytes (refused)
//	client → MD5(challenge ‖ key)
//	both   → resend what the other side has not received, as first sent
//
// Counts are bytes of application data since the handshake. The server
// refuses (24 zero bytes) an unknown ID, a wrong MD5, counts that cannot
// be continued (clientWrite < serverRead, serverWrite < clientRead, or a
// gap beyond the resend buffer) and a replayed request (counts behind a
// reconnect it already accepted).
//
// # Design
//
// A session (Conn) keeps the stream state — counts, RC4 states, the resend
// ring of sent ciphertext, the receive buffer — apart from its transports.
// Each transport has its own reader and writer goroutine; no lock is held
// during network I/O. A reconnect that answers its challenge takes over at
// once: the older transport is killed and its conn closed, which releases
// reads and writes blocked on a half-open socket. The new writer resends
// from the peer's read count; the new reader skips bytes that an older
// transport delivered after the counts were exchanged, so no byte is ever
// delivered twice. Nothing about a session changes before the challenge is
// answered, so a forged or replayed request cannot disturb it.
//
// Session states:
//
//	attached ──transport fails──► detached ──client reconnects──► attached
//	    │                            │
//	    │ Close / server Close       │ ReconnectWait passes
//	    ▼                            ▼
//	  ended ◄────────────────────────┘
//
// The format has no close message and no acknowledgements: a server
// session whose client closed lingers until ReconnectWait passes, and the
// resend buffer must cover the data in flight when a transport dies
// (Write keeps at most half of it unsent; socket send buffers are capped
// at an eighth of it where the socket is reachable).
//
// # Use
//
// The gateway's sniffer hands connections whose first byte is 0x00 or 0xFF
// to Server.ServeConn (raw, after TLS termination, or wrapped with
// WebSocketConn on a WebSocket route); Server.Accept yields each new
// session as a net.Conn to bridge to an upstream. Dial and DialWith are
// the Go client.
package legacy
