package streamtest

import (
	"bytes"
	"testing"
)

func TestWriterAndCheckerAgree(t *testing.T) {
	var out bytes.Buffer
	n, err := NewStream(7, 1<<20).WriteTo(&out)
	if err != nil || n != 1<<20 || out.Len() != 1<<20 {
		t.Fatalf("wrote %d (%v), buffer %d", n, err, out.Len())
	}
	c := NewChecker(7, 1<<20)
	b := out.Bytes()
	for len(b) > 0 { // in odd-sized reads, as a network delivers them
		k := min(len(b), 1+len(b)%4093)
		if off, ok := c.Check(b[:k]); !ok {
			t.Fatalf("mismatch at %d", off)
		}
		b = b[k:]
	}
	if c.Offset() != 1<<20 {
		t.Fatalf("checked %d", c.Offset())
	}
	if _, ok := c.Check([]byte{0}); ok {
		t.Fatal("a byte past the end was accepted")
	}
}

func TestCheckerCatchesLossDuplicationCorruption(t *testing.T) {
	var out bytes.Buffer
	if _, err := NewStream(3, 200<<10).WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	good := out.Bytes()
	cases := map[string][]byte{
		"lost byte":       append(append([]byte(nil), good[:1000]...), good[1001:]...),
		"duplicated byte": append(append(append([]byte(nil), good[:1000]...), good[999]), good[1000:]...),
		"flipped bit":     append(append(append([]byte(nil), good[:1000]...), good[1000]^1), good[1001:]...),
		"other seed":      func() []byte { var b bytes.Buffer; NewStream(4, 200<<10).WriteTo(&b); return b.Bytes() }(),
	}
	for name, bad := range cases {
		off, ok := NewChecker(3, 200<<10).Check(bad)
		if ok {
			t.Errorf("%s: accepted", name)
		}
		if name != "other seed" && off > 1000 {
			t.Errorf("%s: mismatch reported at %d, after the damage at 1000", name, off)
		}
	}
}

func TestEndlessStream(t *testing.T) {
	s := NewStream(1, -1)
	var total int
	for range 100 {
		p := s.Next()
		if len(p) == 0 || len(p) > MaxChunk {
			t.Fatalf("chunk of %d bytes", len(p))
		}
		total += len(p)
	}
	if total == 0 {
		t.Fatal("no data")
	}
}
