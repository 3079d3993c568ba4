package resume

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/flynn/noise"
)

// RFC 7748 §5.2 and §6.1 test vectors.
var x25519Tests = []struct {
	name, scalar, point, out string
}{
	{"rfc7748 5.2 #1",
		"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
	{"rfc7748 5.2 #2",
		"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
		"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
		"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	{"rfc7748 6.1 alice public",
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"0900000000000000000000000000000000000000000000000000000000000000",
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
	{"rfc7748 6.1 bob public",
		"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		"0900000000000000000000000000000000000000000000000000000000000000",
		"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
	{"rfc7748 6.1 shared",
		"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
		"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
}

func TestX25519Vectors(t *testing.T) {
	for _, tt := range x25519Tests {
		t.Run(tt.name, func(t *testing.T) {
			scalar, point, want := unhexT(t, tt.scalar), unhexT(t, tt.point), unhexT(t, tt.out)
			got, err := dhX25519{}.DH(scalar, point)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("DH = %x, want %x", got, want)
			}
			if point[0] == 9 {
				if got := x25519Base(scalar); !bytes.Equal(got, want) {
					t.Fatalf("x25519Base = %x, want %x", got, want)
				}
			}
		})
	}
}

// TestX25519MatchesNoise checks the fast DH function against the one of
// flynn/noise (x/crypto's X25519) on random keys, including scalars whose
// top bits are set, which clamping must clear.
func TestX25519MatchesNoise(t *testing.T) {
	for i := range 200 {
		seed := make([]byte, 64)
		rand.Read(seed)
		if i%2 == 0 {
			seed[31] |= 0xc0
			seed[0] |= 7
		}
		want, err := noise.DH25519.GenerateKeypair(bytes.NewReader(seed[:32]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := dhX25519{}.GenerateKeypair(bytes.NewReader(seed[:32]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Private, want.Private) || !bytes.Equal(got.Public, want.Public) {
			t.Fatalf("key pair %x/%x, want %x/%x", got.Private, got.Public, want.Private, want.Public)
		}
		peer, _ := noise.DH25519.GenerateKeypair(bytes.NewReader(seed[32:]))
		wantDH, err := noise.DH25519.DH(want.Private, peer.Public)
		if err != nil {
			t.Fatal(err)
		}
		gotDH, err := dhX25519{}.DH(got.Private, peer.Public)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotDH, wantDH) {
			t.Fatalf("DH %x, want %x", gotDH, wantDH)
		}
	}
}

func TestX25519Rejects(t *testing.T) {
	priv := make([]byte, 32)
	rand.Read(priv)
	tests := []struct {
		name        string
		priv, point []byte
	}{
		{"zero point", priv, make([]byte, 32)},
		{"order 2 point", priv, unhexT(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"short point", priv, make([]byte, 31)},
		{"short scalar", priv[:31], unhexT(t, "0900000000000000000000000000000000000000000000000000000000000000")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := (dhX25519{}).DH(tt.priv, tt.point); err == nil {
				t.Fatalf("DH = %x, want an error", out)
			}
		})
	}
	if _, err := (dhX25519{}).GenerateKeypair(bytes.NewReader(priv[:31])); err == nil {
		t.Fatal("GenerateKeypair with 31 random bytes succeeded")
	}
}

func unhexT(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
