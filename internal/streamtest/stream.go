package streamtest

import (
	"bytes"
	"io"
	"math/rand/v2"
)

// MaxChunk is the largest chunk a Stream hands out.
const MaxChunk = 48 << 10

// Stream is a deterministic pseudo-random byte stream cut into chunks of
// 1 to MaxChunk bytes. Two Streams made with the same seed produce the same
// chunks. Make one with NewStream; the zero value is not usable. A Stream is
// not safe for concurrent use.
type Stream struct {
	src  *rand.Rand
	buf  []byte
	left int64 // bytes still to produce; negative: endless
}

// NewStream returns the stream of seed, size bytes long (negative: endless).
func NewStream(seed uint64, size int64) *Stream {
	return &Stream{src: rand.New(rand.NewPCG(seed, 1)), buf: make([]byte, MaxChunk), left: size}
}

// Next returns the next chunk, or nil at the end of the stream. The chunk is
// valid until the next call.
func (s *Stream) Next() []byte {
	if s.left == 0 {
		return nil
	}
	n := int64(1 + s.src.IntN(MaxChunk))
	if s.left > 0 {
		n = min(n, s.left)
		s.left -= n
	}
	Fill(s.src, s.buf[:n])
	return s.buf[:n]
}

// WriteTo writes the rest of the stream to w, one Write per chunk (so a
// message-oriented writer sees the chunks as messages), and returns the
// bytes written and the first write error.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for p := s.Next(); p != nil; p = s.Next() {
		n, err := w.Write(p)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Fill writes pseudo-random bytes from src into p.
func Fill(src *rand.Rand, p []byte) {
	for i := 0; i < len(p); i += 8 {
		v := src.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
}

// Checker checks received bytes against the stream of a seed. Make one with
// NewChecker; it is not safe for concurrent use.
type Checker struct {
	s    *Stream
	pend []byte
	off  int64
}

// NewChecker returns a checker of the stream NewStream(seed, size) writes.
func NewChecker(seed uint64, size int64) *Checker {
	return &Checker{s: NewStream(seed, size)}
}

// Check consumes p, the next bytes received. It returns the offset checked
// so far and whether every byte matched; on a mismatch (or bytes past the
// end of the stream) the offset is that of the first wrong byte's chunk
// position, and the checker must not be used again.
func (c *Checker) Check(p []byte) (int64, bool) {
	for len(p) > 0 {
		if len(c.pend) == 0 {
			if c.pend = c.s.Next(); c.pend == nil {
				return c.off, false
			}
		}
		k := min(len(p), len(c.pend))
		if !bytes.Equal(p[:k], c.pend[:k]) {
			return c.off, false
		}
		p, c.pend, c.off = p[k:], c.pend[k:], c.off+int64(k)
	}
	return c.off, true
}

// Offset returns how many bytes have been checked.
func (c *Checker) Offset() int64 { return c.off }
