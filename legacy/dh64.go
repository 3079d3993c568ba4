package legacy

import (
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// Specification constants of the dh64 key agreement.
const (
	// dhP is the dh64 prime, 2^64 − 59.
	dhP uint64 = 0xffffffffffffffc5
	// dhG is the dh64 generator.
	dhG uint64 = 5
)

// mulMod returns a·b mod p without overflow, using the 128-bit product.
func mulMod(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, dhP)
}

// powMod returns base^exp mod p by square-and-multiply.
func powMod(base, exp uint64) uint64 {
	base %= dhP
	result := uint64(1)
	for exp > 0 {
		if exp&1 == 1 {
			result = mulMod(result, base)
		}
		base = mulMod(base, base)
		exp >>= 1
	}
	return result
}

// dhPublic returns the dh64 public key g^priv mod p.
func dhPublic(priv uint64) uint64 { return powMod(dhG, priv) }

// dhSecret returns the shared dh64 secret peerPub^priv mod p.
func dhSecret(priv, peerPub uint64) uint64 { return powMod(peerPub, priv) }

// validPublic reports whether pub is usable as a peer's public key. The
// format only forbids 0; we also refuse the non-canonical values ≥ p and the
// elements 1 and p−1, whose subgroups would make the secret trivially
// guessable. An honest peer produces none of them in practice.
func validPublic(pub uint64) bool {
	return pub > 1 && pub < dhP-1
}

// newKeyPair draws a private key from r (crypto/rand in production) and
// returns it with its public key.
func newKeyPair(r io.Reader) (priv, pub uint64, err error) {
	var b [8]byte
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, 0, fmt.Errorf("legacy: private key: %w", err)
		}
		priv = binary.LittleEndian.Uint64(b[:])
		if priv == 0 {
			continue
		}
		pub = dhPublic(priv)
		if validPublic(pub) {
			return priv, pub, nil
		}
	}
	return 0, 0, fmt.Errorf("legacy: private key: random source keeps yielding unusable keys")
}

// sessionKey is the 8-byte session key: the little-endian dh64 secret. It
// keys both RC4 streams and every MD5 proof.
type sessionKey [8]byte

func keyFromSecret(secret uint64) (k sessionKey) {
	binary.LittleEndian.PutUint64(k[:], secret)
	return k
}

// proof returns MD5(msg ‖ key), the format's only authenticator. msg is at
// most 24 bytes (a reconnect request) so everything stays on the stack.
func proof(msg []byte, key sessionKey) [proofLen]byte {
	var buf [reconnectSignedLen + len(sessionKey{})]byte
	n := copy(buf[:], msg)
	n += copy(buf[n:], key[:])
	return md5.Sum(buf[:n])
}

// newCiphers returns the two RC4 streams of one side: both start from the
// same key, no keystream is dropped.
func newCiphers(key sessionKey) (read, write *rc4.Cipher) {
	read, err := rc4.NewCipher(key[:])
	if err != nil {
		panic("legacy: rc4 rejected an 8-byte key: " + err.Error())
	}
	write, _ = rc4.NewCipher(key[:])
	return read, write
}
