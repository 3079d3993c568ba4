// Package faultproxy implements a loopback TCP proxy that injects transport
// faults, for tests and benchmarks of protocols that must survive a bad
// network (resume, legacy, the gateway end to end, cmd/dualbench).
//
// A Proxy listens on a local address and relays every connection it accepts
// (the client side) to a fixed target (the target side); each such pair of
// sockets is a link. Links forward bytes unchanged until a fault strikes.
//
// # Faults
//
// A Fault is what happens to a link:
//
//   - Drop closes both sides: each peer sees a FIN.
//   - Reset aborts both sides: each peer sees an RST (SO_LINGER 0).
//   - HalfOpen closes the client side and keeps the target side open and
//     silent: the target hears nothing, its reads hang and, once the socket
//     buffers fill, so do its writes.
//   - Blackhole stops relaying both ways and keeps both sides open without
//     reading them; only a timeout can tell either peer.
//   - Discard keeps relaying in name only: the proxy keeps reading both
//     sides and throws the bytes away, so neither peer sees data, a FIN or
//     back-pressure, until one of them closes and the proxy passes the close
//     on. A discarding link is still live and may be struck again.
//
// Sockets kept open by HalfOpen and Blackhole are held until Close.
//
// Faults strike on demand (Strike, StrikeRandom) or when a link's byte
// budget runs out. SetBudget installs a function that gives each link a
// Budget the first time it forwards bytes while the function is set: limits
// on the bytes forwarded in both directions together and in each direction,
// and the fault to inject when one is exceeded. The bytes within the budget
// are forwarded first, so a fault can land anywhere in a stream: inside a
// handshake, in the middle of a frame, during a resume.
//
// # Observation
//
// Stats counts accepted connections, failed dials, live links, held sockets
// and the faults injected by kind; WaitConns waits, with a deadline, until a
// given number of links is live. Options.Tap sees the bytes every new link
// relays, so a benchmark can time how long a new transport takes to carry
// its first data after a fault.
//
// # Lifecycle
//
// New starts the accept loop; every goroutine the proxy starts (the accept
// loop, two relays per link) is stopped and waited for by Close, which also
// closes every socket, held ones included. A relay passes a close (FIN or
// error) from one peer on to the other as a full close: the proxy never
// leaves a link half-closed unless HalfOpen strikes.
package faultproxy
