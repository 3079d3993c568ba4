package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// whole returns the first n bytes of stream id generated in one call.
func whole(id uint64, n int) []byte {
	b := make([]byte, n)
	newPattern(id).fill(b)
	return b
}

func TestPatternChunkingIndependent(t *testing.T) {
	const n = 5*patternBlock + 123
	want := whole(7, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		g := newPattern(7)
		got := make([]byte, 0, n)
		for len(got) < n {
			k := min(n-len(got), 1+rng.IntN(3*patternBlock))
			chunk := make([]byte, k)
			g.fill(chunk)
			got = append(got, chunk...)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("chunked generation differs from whole generation")
		}
		if g.offset() != n {
			t.Fatalf("offset %d, want %d", g.offset(), n)
		}
	}
}

func TestPatternBlockHeaders(t *testing.T) {
	b := whole(42, 4*patternBlock)
	for k := range 4 {
		blk := b[k*patternBlock:]
		if seq := binary.BigEndian.Uint64(blk); seq != uint64(k) {
			t.Fatalf("block %d has sequence number %d", k, seq)
		}
		if id := binary.BigEndian.Uint64(blk[8:]); id != 42 {
			t.Fatalf("block %d has stream id %d", k, id)
		}
	}
	if bytes.Equal(whole(1, 2048), whole(2, 2048)) {
		t.Fatal("streams 1 and 2 are equal")
	}
	// The fill is not constant: no 8-byte word repeats within a block.
	seen := map[uint64]bool{}
	for j := patternHeader; j < patternBlock; j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		if seen[w] {
			t.Fatalf("word %#x repeats", w)
		}
		seen[w] = true
	}
}

func TestVerifierAcceptsStream(t *testing.T) {
	data := whole(9, 100000)
	v := newVerifier(9)
	rng := rand.New(rand.NewPCG(5, 6))
	for off := 0; off < len(data); {
		k := min(len(data)-off, 1+rng.IntN(9000))
		if err := v.check(data[off : off+k]); err != nil {
			t.Fatalf("at %d: %v", off, err)
		}
		off += k
	}
	if v.offset() != uint64(len(data)) {
		t.Fatalf("offset %d", v.offset())
	}
}

func TestVerifierDetectsCorruption(t *testing.T) {
	data := whole(9, 10000)
	for _, pos := range []int{0, 1, 15, 16, 1023, 1024, 5000, 9999} {
		bad := bytes.Clone(data)
		bad[pos] ^= 0x01
		v := newVerifier(9)
		err := v.check(bad)
		if err == nil {
			t.Fatalf("flip at %d not detected", pos)
		}
		if want := "byte " + strconv.Itoa(pos) + " "; !strings.Contains(err.Error(), want) {
			t.Fatalf("flip at %d: error %q does not name the offset", pos, err)
		}
		if v.offset() != 0 {
			t.Fatalf("verifier advanced to %d after a mismatch", v.offset())
		}
	}
}

func TestVerifierDetectsMisplacedReplay(t *testing.T) {
	data := whole(3, 4*patternBlock)
	v := newVerifier(3)
	if err := v.check(data[:2*patternBlock]); err != nil {
		t.Fatal(err)
	}
	// Block 1 again where block 2 belongs: a replay from the wrong offset.
	err := v.check(data[patternBlock : 2*patternBlock])
	if err == nil {
		t.Fatal("replayed block not detected")
	}
	if !strings.Contains(err.Error(), "says block 1 of stream 3; want block 2 of stream 3") {
		t.Fatalf("error does not describe the replay: %v", err)
	}
	// Another stream's bytes: the header names the stream.
	v2 := newVerifier(4)
	if err := v2.check(data[:patternBlock]); err == nil || !strings.Contains(err.Error(), "block 0 of stream 3; want block 0 of stream 4") {
		t.Fatalf("wrong stream: %v", err)
	}
	// A dropped byte.
	v3 := newVerifier(3)
	if err := v3.check(append(bytes.Clone(data[:100]), data[101:200]...)); err == nil {
		t.Fatal("dropped byte not detected")
	}
}

func TestPreludeRoundTrip(t *testing.T) {
	for _, id := range []uint64{0, 1, 1 << 40, ^uint64(0)} {
		b := appendPrelude(nil, id)
		if len(b) != streamPreludeLen {
			t.Fatalf("prelude length %d", len(b))
		}
		got, err := parsePrelude(b)
		if err != nil || got != id {
			t.Fatalf("parsePrelude = %d, %v; want %d", got, err, id)
		}
		for n := range len(b) {
			if _, err := parsePrelude(b[:n]); err == nil {
				t.Fatalf("truncated prelude of %d bytes accepted", n)
			}
		}
	}
	bad := appendPrelude(nil, 1)
	bad[0] = 'X'
	if _, err := parsePrelude(bad); err == nil {
		t.Fatal("bad magic accepted")
	}
}

func FuzzParsePrelude(f *testing.F) {
	f.Add(appendPrelude(nil, 5))
	f.Add([]byte("DGBENCH1"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parsePrelude(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendPrelude(nil, id), b) {
			t.Fatalf("accepted %x, which does not round-trip", b)
		}
	})
}
