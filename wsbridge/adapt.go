package wsbridge

import "net"

// adaptSession turns an accepted connection into a Session, wrapping
// session types of other packages that carry messages and close codes.
func adaptSession(c net.Conn) Session {
	if s := adaptResume(c); s != nil {
		return s
	}
	return c
}
