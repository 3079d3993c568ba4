//go:build !unix

package rawio

import (
	"errors"
	"net"
)

// Buffer lends a reader its storage.
type Buffer interface {
	Get() []byte
	Release()
}

// Reader is unused off unix: New returns nil and callers use net.Conn.Read.
type Reader struct{}

// New returns nil off unix.
func New(net.Conn) *Reader { return nil }

// Read is never called off unix.
func (*Reader) Read(Buffer) (int, error) {
	return 0, errors.New("rawio: no raw reader on this platform")
}

// ErrWouldBlock is returned by ReadNow when the socket has nothing to read.
var ErrWouldBlock = errors.New("rawio: nothing to read now")

// ReadNow is never called off unix.
func (*Reader) ReadNow(Buffer) (int, error) {
	return 0, errors.New("rawio: no raw reader on this platform")
}
