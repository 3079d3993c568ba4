// Package resume implements the Dualgate resumable stream protocol, version
// 1 (docs/protocol.md): a reliable, ordered, end-to-end encrypted stream of
// messages between a client and the gateway that survives any number of
// transport drops.
//
// # Transports and handshakes
//
// A session runs over a sequence of transports: WebSocket connections
// (subprotocol dualgate.v1, one binary message per protocol message, see
// UpgradeWebSocket; WebSocketTransport adapts a coder/websocket connection)
// or byte streams (raw TCP or TLS starting with the
// preamble "DGS1", then u16-length-prefixed messages, see Server.ServeConn).
// Every transport starts with a fresh Noise handshake (X25519, SHA-256,
// ChaCha20-Poly1305 or AES-256-GCM as the client proposes): NN when the
// client knows nothing, NK when it pins the gateway's static key
// (DialOptions.ServerKey, from Key.PublicString), which detects a man in the
// middle. A transport that follows the first one resumes the session with
// the psk0 variant of the pattern, keyed by a secret derived from the first
// handshake's hash, and a strictly increasing resume counter: a captured
// resume message is useless, and a forged one never detaches the live
// transport, because only a CONFIRM encrypted under the new keys does.
//
// Frames are sealed with the transport's keys, except on a transport whose
// TLS 1.3 the server terminated itself (TransportInfo.TLSVersion) for an
// unpinned client that verified the certificate: after the sealed CONFIRM
// its frames rely on TLS alone, so each byte is encrypted once
// (docs/protocol.md §5.7; DialOptions.AlwaysSeal and ServerOptions.AlwaysSeal
// turn that off).
//
// # Delivery
//
// Each side keeps the bytes it sent until the peer acknowledges having
// delivered them (returned by Read, or taken into a message by
// ReadMessage), at most the peer's receive window (256 KiB by default);
// Write blocks when the window is full and nothing is ever dropped. After a
// resume both sides retransmit from the other's delivered offset, with the
// original message boundaries, and receivers drop any overlap, so the
// application sees each byte exactly once and in order. Deadlines on a Conn
// are plain timeouts; they never trigger a reconnect.
//
// # Liveness and close
//
// A side that sent nothing for the ping interval sends PING; a transport on
// which nothing arrives for the dead-peer timeout is dead, which detects
// half-open connections: the server keeps the session detached (for the
// detached TTL, without any goroutine or buffer) and the client resumes with
// exponential backoff and full jitter. A session ends only with an
// authenticated CLOSE exchange (Close, CloseWithError: io.EOF or a
// *CloseError on the other side), a final refusal, expiry, or Server.Close.
//
// # Resources
//
// Buffers come from a pool and return to it as soon as they are
// acknowledged or read, so an idle session holds none. A WebSocket transport
// frames its messages itself: it reads as many frames as one system call
// brings, unmasks and decrypts them in place, and writes a burst of sealed
// frames with one system call. On a plain socket, an idle server transport
// costs one goroutine parked with a minimal stack (Server.StartTransport;
// after a bulk burst its reader waits itself) for its first quiet second,
// and none after (on Linux its wait then joins internal/rawio's epoll set);
// other transports need the goroutine that reads them (the caller of
// Server.ServeTransport, or one per client session). A goroutine to write
// exists only while there is something to send. The server bounds sessions in total and per client
// address, and exports Prometheus metrics through ServerOptions.Registerer.
package resume
