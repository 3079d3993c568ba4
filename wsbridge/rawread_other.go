//go:build !unix

package wsbridge

import (
	"errors"
	"net"
)

// rawReader is unused off unix: streamEnd reads with net.Conn.Read.
type rawReader struct{}

func newRawReader(net.Conn) *rawReader { return nil }

func (*rawReader) read(*loopBuf) (int, error) { return 0, errors.New("wsbridge: no raw reader") }
