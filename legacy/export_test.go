package legacy

import "io"

// setRand replaces the server's randomness (private keys, IDs, challenges)
// so that tests can reproduce the specification's vector.
func (s *Server) setRand(r io.Reader) { s.rand = r }

// endWithNoLinger ends a server session at once, for benchmarks.
func (c *Conn) endWithNoLinger() error {
	c.endWith(ErrSessionLost, "benchmark")
	return nil
}
