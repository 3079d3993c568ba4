package legacy

import "io"

// setRand replaces the server's randomness (private keys, IDs, challenges)
// so that tests can reproduce the specification's vector.
func (s *Server) setRand(r io.Reader) { s.rand = r }
