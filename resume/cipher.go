package resume

import "github.com/flynn/noise"

// sheddingCipher is one direction of a transport's Noise CipherState. While
// the direction is quiet it sheds its AEAD (AES-GCM keeps round keys and
// multiplication tables, about 700 bytes per direction), keeping only the
// 32-byte key and the nonce, and rebuilds it on the next use: an idle
// session then holds no cipher state. Only its owner uses it — the link's
// flusher for the sending direction, its reader for the receiving one — so
// it needs no lock.
type sheddingCipher struct {
	cs    *noise.CipherState // nil while shed
	suite noise.CipherSuite
	key   [32]byte
	n     uint64
}

func newSheddingCipher(suite noise.CipherSuite, cs *noise.CipherState) sheddingCipher {
	return sheddingCipher{cs: cs, suite: suite}
}

// state returns the CipherState, rebuilt from key and nonce if it was shed.
func (c *sheddingCipher) state() *noise.CipherState {
	if c.cs == nil {
		c.cs = noise.UnsafeNewCipherState(c.suite, c.key, c.n)
	}
	return c.cs
}

// shed drops the CipherState, keeping what rebuilds it.
func (c *sheddingCipher) shed() {
	if c.cs != nil && c.suite != nil {
		c.key, c.n = c.cs.UnsafeKey(), c.cs.Nonce()
		c.cs = nil
		if testHookShed != nil {
			testHookShed(c)
		}
	}
}

// testHookShed, when set by a test before any session starts, is called by
// the owner of a cipher each time it sheds.
var testHookShed func(*sheddingCipher)
