//go:build unix

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Buffer lends a reader its storage.
type Buffer interface {
	// Get returns the storage to read into (at least one byte).
	Get() []byte
	// Release takes the storage back; the reader holds none until the next Get.
	Release()
}

// Reader reads one socket for one goroutine at a time. The zero value is not
// usable; make one with New.
type Reader struct {
	c      net.Conn
	rc     syscall.RawConn
	fn     func(fd uintptr) bool // r.readFD, bound once so that reads do not allocate
	buf    Buffer                // the current read's storage
	n      int
	errno  error
	nowait bool // ReadNow: report EAGAIN instead of waiting

	// Park (Linux): registered is owned by the parking goroutine; token,
	// the pending Park's, is shared with Cancel and the poller.
	registered bool
	pmu        sync.Mutex
	token      uint64
}

// New returns a Reader for c's socket, or nil when c has none that can be
// read directly. It looks through wrappers that offer NetConn() and report
// Buffered() == 0 (such as a listener.Conn whose sniffed bytes were read), but
// never through a *tls.Conn (which has no Buffered method).
func New(c net.Conn) *Reader {
	sock := c
	for range 8 {
		if sc, ok := sock.(syscall.Conn); ok {
			switch sock.(type) {
			case *net.TCPConn, *net.UnixConn:
			default:
				return nil
			}
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			r := &Reader{c: c, rc: rc}
			r.fn = r.readFD
			return r
		}
		w, ok := sock.(interface {
			NetConn() net.Conn
			Buffered() int
		})
		if !ok || w.Buffered() != 0 {
			return nil
		}
		sock = w.NetConn()
	}
	return nil
}

func (r *Reader) readFD(fd uintptr) bool {
	b := r.buf.Get()
	for {
		r.n, r.errno = syscall.Read(int(fd), b)
		if r.errno != syscall.EINTR {
			break
		}
	}
	if r.errno == syscall.EAGAIN {
		r.buf.Release()
		return r.nowait // park in the poller without a buffer, unless ReadNow
	}
	return true
}

// Read reads like net.Conn.Read into buf.Get(): io.EOF at the end of the
// stream, a *net.OpError otherwise (deadlines and Close of the connection
// apply as to net.Conn.Read). On return buf holds its storage unless the
// read failed before any data.
func (r *Reader) Read(buf Buffer) (int, error) {
	r.buf = buf
	err := r.rc.Read(r.fn)
	r.buf = nil
	if err != nil { // closed or deadline: the poller's error
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "read"
		}
		return 0, err
	}
	if r.errno == syscall.EAGAIN { // only with ReadNow
		return 0, ErrWouldBlock
	}
	if r.errno != nil {
		return 0, &net.OpError{Op: "read", Net: r.c.LocalAddr().Network(), Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: os.NewSyscallError("read", r.errno)}
	}
	if r.n <= 0 {
		return 0, io.EOF
	}
	return r.n, nil
}

// ErrWouldBlock is returned by ReadNow when the socket has nothing to read.
var ErrWouldBlock = errors.New("rawio: nothing to read now")

// ReadNow is Read without waiting: ErrWouldBlock (and buf released) when the
// socket has nothing to report.
func (r *Reader) ReadNow(buf Buffer) (int, error) {
	r.nowait = true
	n, err := r.Read(buf)
	r.nowait = false
	return n, err
}
