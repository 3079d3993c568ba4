// Package rawio reads a socket through its raw connection (syscall.RawConn)
// so that a reader waiting for data holds no buffer: the buffer is asked for
// only when the socket has bytes, an end or an error to report, and handed
// back before the reader parks in the runtime's poller. Thousands of idle
// connections then cost no buffer memory.
//
// New returns nil for a connection without a raw socket under it (a
// *tls.Conn, a net.Pipe, a wrapper holding bytes of its own); callers fall
// back to net.Conn.Read then.
package rawio
