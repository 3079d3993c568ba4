package legacy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestNewRequestRoundTripAndTruncation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		pub := rng.Uint64()
		b := appendNewRequest(nil, pub)
		got, err := parseNewRequest(b)
		if !validPublic(pub) {
			if !errors.Is(err, errBadPublicKey) {
				t.Fatalf("pub %#x accepted", pub)
			}
			continue
		}
		if err != nil || got != pub {
			t.Fatalf("round trip %#x: %#x, %v", pub, got, err)
		}
		for n := range len(b) {
			if _, err := parseNewRequest(b[:n]); !errors.Is(err, errBadLength) {
				t.Fatalf("truncated to %d accepted: %v", n, err)
			}
		}
		if _, err := parseNewRequest(append(b, 0)); !errors.Is(err, errBadLength) {
			t.Fatal("overlong accepted")
		}
	}
	for _, pub := range []uint64{0, 1, dhP - 1, dhP, ^uint64(0)} {
		if _, err := parseNewRequest(appendNewRequest(nil, pub)); !errors.Is(err, errBadPublicKey) {
			t.Errorf("public key %#x accepted", pub)
		}
	}
	if _, err := parseNewRequest([]byte{0xFF, 9, 9, 9, 9, 9, 9, 9, 9}); !errors.Is(err, errWrongType) {
		t.Errorf("wrong type accepted: %v", err)
	}
}

func TestReconnectRequestRoundTripAndTruncation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		r := reconnectRequest{id: rng.Uint64(), writeCount: rng.Uint64(), readCount: rng.Uint64()}
		r.sign(keyFromSecret(rng.Uint64()))
		b := r.marshal()
		got, err := parseReconnectRequest(b[:])
		if err != nil || got != r {
			t.Fatalf("round trip %+v: %+v, %v", r, got, err)
		}
		for n := range len(b) {
			if _, err := parseReconnectRequest(b[:n]); !errors.Is(err, errBadLength) {
				t.Fatalf("truncated to %d accepted", n)
			}
		}
		b[0] = 0x00
		if _, err := parseReconnectRequest(b[:]); !errors.Is(err, errWrongType) {
			t.Fatal("wrong type accepted")
		}
	}
}

func TestResponsesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		nr := newResponse{serverPub: 2 + rng.Uint64N(dhP-3)}
		for i := range nr.encID {
			nr.encID[i], nr.challenge[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		b := nr.marshal()
		got, err := parseNewResponse(b[:])
		if err != nil || got != nr {
			t.Fatalf("new response round trip: %+v, %v", got, err)
		}
		rr := reconnectResponse{writeCount: rng.Uint64(), readCount: rng.Uint64()}
		rb := rr.marshal()
		got2, err := parseReconnectResponse(rb[:])
		if err != nil || got2 != rr {
			t.Fatalf("reconnect response round trip: %+v, %v", got2, err)
		}
		if _, err := parseNewResponse(b[:len(b)-1]); err == nil {
			t.Fatal("truncated new response accepted")
		}
		if _, err := parseReconnectResponse(rb[:len(rb)-1]); err == nil {
			t.Fatal("truncated reconnect response accepted")
		}
	}
	var zero reconnectResponse
	if !zero.refused() {
		t.Fatal("zero response not a refusal")
	}
}

// FuzzNewRequest feeds the server's new-session parser arbitrary bytes: it
// must never panic, accept only the exact 9-byte shape with a 0x00 type and
// a usable key, and re-encode what it accepts to the same bytes.
func FuzzNewRequest(f *testing.F) {
	f.Add([]byte{0x00, 0x97, 0x9d, 0xe5, 0x48, 0x44, 0x57, 0x49, 0xdf})
	f.Add([]byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xFF, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x00, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := parseNewRequest(b)
		if err != nil {
			if pub != 0 {
				t.Fatal("value returned with an error")
			}
			return
		}
		if len(b) != newRequestLen || b[0] != TypeNewSession || !validPublic(pub) {
			t.Fatalf("accepted %x", b)
		}
		if !bytes.Equal(appendNewRequest(nil, pub), b) {
			t.Fatalf("re-encoding differs for %x", b)
		}
		_ = dhSecret(0x1234, pub) // the secret of any accepted key computes
	})
}

// FuzzReconnectRequest does the same for the reconnect parser, and checks
// that a proof only verifies with the key that made it.
func FuzzReconnectRequest(f *testing.F) {
	vec := append([]byte{0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 0, 0, 0, 0, 0x34, 0, 0, 0, 0, 0, 0, 0},
		0x5a, 0xc7, 0xae, 0x25, 0xfa, 0xc0, 0x59, 0x92, 0x8c, 0x1c, 0x23, 0xfc, 0xcc, 0x2f, 0xca, 0xd1)
	f.Add(vec, uint64(0xa69bdcd2956cdb5d))
	f.Add(make([]byte, reconnectRequestLen), uint64(0))
	f.Add(vec[:20], uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, secret uint64) {
		r, err := parseReconnectRequest(b)
		if err != nil {
			if r != (reconnectRequest{}) {
				t.Fatal("value returned with an error")
			}
			return
		}
		if len(b) != reconnectRequestLen || b[0] != TypeReconnect {
			t.Fatalf("accepted %x", b)
		}
		if m := r.marshal(); !bytes.Equal(m[:], b) {
			t.Fatalf("re-encoding differs for %x", b)
		}
		key := keyFromSecret(secret)
		signed := r
		signed.sign(key)
		if signed.proof == r.proof {
			other := keyFromSecret(secret + 1)
			again := r
			again.sign(other)
			if again.proof == r.proof {
				t.Fatalf("proof verifies under two keys: %x", b)
			}
		}
	})
}

// FuzzReconnectResponse covers the client's parser of the server's answer.
func FuzzReconnectResponse(f *testing.F) {
	f.Add(make([]byte, reconnectResponseLen))
	f.Add([]byte{52, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseReconnectResponse(b)
		if err != nil {
			return
		}
		if m := r.marshal(); !bytes.Equal(m[:], b) {
			t.Fatalf("re-encoding differs for %x", b)
		}
		if r.refused() != bytes.Equal(b, make([]byte, reconnectResponseLen)) {
			t.Fatalf("refusal misread for %x", b)
		}
	})
}

func TestRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	r := newRing(10000)
	var all []byte
	for range 2000 {
		p := make([]byte, rng.IntN(300))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		r.write(p, nil)
		all = append(all, p...)
		if r.end != uint64(len(all)) {
			t.Fatal("end")
		}
		from := r.end - r.retained()
		if r.retained() != min(r.end, 10000) {
			t.Fatalf("retained %d of %d", r.retained(), r.end)
		}
		if !r.holds(from) || (from > 0 && r.holds(from-1)) {
			t.Fatal("holds")
		}
		off := from + uint64(rng.Int64N(int64(r.end-from)+1))
		got := make([]byte, r.end-off)
		r.read(got, off)
		if !bytes.Equal(got, all[off:]) {
			t.Fatalf("ring read at %d of %d", off, r.end)
		}
	}
}
