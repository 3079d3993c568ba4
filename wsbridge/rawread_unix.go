//go:build unix

package wsbridge

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// rawReader reads a TCP or unix upstream through its raw connection,
// taking the copy loop's buffer only when the socket has data (or an end)
// to report: a read that would block gives the buffer back before waiting
// for readability in the runtime's poller, so an idle upstream pins no
// buffer. It serves one reader at a time (the upstream-to-session loop).
type rawReader struct {
	c  net.Conn
	rc syscall.RawConn
	fn func(fd uintptr) bool // r.readFD, made once so reads do not allocate
	lb *loopBuf              // the current read's buffer
	n  int
	// errno of the current read
	errno error
}

// newRawReader returns a rawReader for a *net.TCPConn or *net.UnixConn, and
// nil for any other connection (read with net.Conn.Read then).
func newRawReader(c net.Conn) *rawReader {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawReader{c: c, rc: rc}
	r.fn = r.readFD
	return r
}

func (r *rawReader) readFD(fd uintptr) bool {
	b := r.lb.get()
	for {
		r.n, r.errno = syscall.Read(int(fd), b)
		if r.errno != syscall.EINTR {
			break
		}
	}
	if r.errno == syscall.EAGAIN {
		r.lb.release()
		return false // wait for readability without a buffer
	}
	return true
}

// read reads like net.Conn.Read into lb.get(): io.EOF at the end of the
// stream, *net.OpError otherwise.
func (r *rawReader) read(lb *loopBuf) (int, error) {
	r.lb = lb
	err := r.rc.Read(r.fn)
	r.lb = nil
	if err != nil { // closed or deadline: the poller's error
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "read"
		}
		return 0, err
	}
	if r.errno != nil {
		return 0, &net.OpError{Op: "read", Net: r.c.LocalAddr().Network(), Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("read", r.errno)}
	}
	if r.n <= 0 {
		return 0, io.EOF
	}
	return r.n, nil
}
