package resume

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flynn/noise"
)

// Key is the gateway's static X25519 key pair. A Key is immutable and safe
// for concurrent use; the zero value is not usable.
type Key struct {
	kp noise.DHKey
}

// GenerateKey returns a new random key.
func GenerateKey() (*Key, error) { return generateKey(rand.Reader) }

func generateKey(r io.Reader) (*Key, error) {
	kp, err := dhX25519{}.GenerateKeypair(r)
	if err != nil {
		return nil, fmt.Errorf("resume: generate key: %w", err)
	}
	return &Key{kp: kp}, nil
}

// NewKey returns the key with the given 32-byte X25519 private key.
func NewKey(private []byte) (*Key, error) {
	if len(private) != dhLen {
		return nil, errors.New("resume: private key must be 32 bytes")
	}
	return generateKey(bytesReader(private))
}

type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &fixedReader{b: append([]byte(nil), b...)} }

// Public returns a copy of the 32-byte public key.
func (k *Key) Public() []byte { return append([]byte(nil), k.kp.Public...) }

// PublicString returns the public key as unpadded base64url, the value a
// client pins in DialOptions.ServerKey.
func (k *Key) PublicString() string { return base64.RawURLEncoding.EncodeToString(k.kp.Public) }

// ParsePublicKey decodes a pinned public key written by PublicString.
func ParsePublicKey(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("resume: parse public key: %w", err)
	}
	if len(b) != dhLen {
		return nil, fmt.Errorf("resume: parse public key: %d bytes, want 32", len(b))
	}
	return b, nil
}

// LoadOrCreateKey reads the private key stored at path (32 raw bytes), or
// generates one and writes it there with mode 0600 on first use.
func LoadOrCreateKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := NewKey(b)
		if err != nil {
			return nil, fmt.Errorf("resume: key file %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resume: read key: %w", err)
	}
	k, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("resume: key dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, k.kp.Private, 0o600); err != nil {
		return nil, fmt.Errorf("resume: write key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("resume: write key: %w", err)
	}
	return k, nil
}
