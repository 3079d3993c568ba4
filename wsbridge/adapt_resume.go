package wsbridge

import "net"

// adaptResume wraps a *resume.Conn; it returns nil for other connections.
func adaptResume(c net.Conn) Session { return nil }
