// Package rawio reads a socket through its raw connection (syscall.RawConn)
// so that a reader waiting for data holds no buffer: the buffer is asked for
// only when the socket has bytes, an end or an error to report, and handed
// back before the reader parks in the runtime's poller. Thousands of idle
// connections then cost no buffer memory.
//
// On Linux, Park goes further: instead of a goroutine parked per socket, one
// epoll set and one goroutine for the whole process watch every parked
// socket and run the owner's function when one has something to report (the
// goroutine ends when nothing is parked). Closing a socket does not report to
// epoll, so an owner takes its pending park back with Cancel before it
// closes. Parking costs a system call, so owners park only sockets that have
// been quiet for a while.
//
// New returns nil for a connection without a raw socket under it (a
// *tls.Conn, a net.Pipe, a wrapper holding bytes of its own); callers fall
// back to net.Conn.Read then.
package rawio
