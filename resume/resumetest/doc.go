// Package resumetest provides test helpers for the resume package and its
// users: Proxy, a real loopback TCP proxy that injects transport faults —
// abrupt kills (also in the middle of a frame, a handshake or a resume) and
// blackholes (a half-open connection: bytes silently dropped, no FIN). Proxy
// is a thin layer over internal/faultproxy.
package resumetest
