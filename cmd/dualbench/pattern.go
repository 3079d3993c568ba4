package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The verifiable data stream of chaos (and of the sink's checks).
//
// Stream id's byte at offset o lies in block k = o / patternBlock. Every
// block starts with its sequence number k and the stream id (both u64
// big-endian), so a misplaced replay shows up as the wrong sequence number at
// a known offset; the rest of the block is splitmix64 output seeded by (id, k).
// Any offset can be generated directly, which keeps the verifier stateless
// apart from its offset.
const (
	patternBlock  = 1024
	patternHeader = 16
)

// streamMagic starts a stream that a verifying upstream should check: the
// 8-byte magic, then the u64 stream id, then the pattern from offset 0.
const (
	streamMagic      = "DGBENCH1"
	streamPreludeLen = 16
)

// errBadPrelude is returned by parsePrelude for input that is not a prelude.
var errBadPrelude = errors.New("dualbench: stream prelude: bad magic")

// appendPrelude appends the prelude of stream id to b.
func appendPrelude(b []byte, id uint64) []byte {
	b = append(b, streamMagic...)
	return binary.BigEndian.AppendUint64(b, id)
}

// parsePrelude decodes a prelude. It needs exactly streamPreludeLen bytes.
func parsePrelude(b []byte) (uint64, error) {
	if len(b) != streamPreludeLen {
		return 0, fmt.Errorf("dualbench: stream prelude: %d bytes, want %d", len(b), streamPreludeLen)
	}
	if string(b[:8]) != streamMagic {
		return 0, errBadPrelude
	}
	return binary.BigEndian.Uint64(b[8:]), nil
}

// splitmix64 is the SplitMix64 output function: a fast, well-mixed hash of x.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pattern generates stream id from any offset. The zero value generates
// stream 0 from offset 0. A pattern is not safe for concurrent use.
type pattern struct {
	id    uint64
	off   uint64 // next offset to generate
	blk   [patternBlock]byte
	blkNo uint64 // block held in blk, valid when have
	have  bool
}

// newPattern returns a generator of stream id starting at offset 0.
func newPattern(id uint64) *pattern { return &pattern{id: id} }

// offset returns the offset of the next byte fill will generate.
func (g *pattern) offset() uint64 { return g.off }

// makeBlock fills g.blk with block k.
func (g *pattern) makeBlock(k uint64) {
	binary.BigEndian.PutUint64(g.blk[0:8], k)
	binary.BigEndian.PutUint64(g.blk[8:16], g.id)
	seed := splitmix64(g.id*0x2545f4914f6cdd1d ^ k)
	for j := patternHeader; j < patternBlock; j += 8 {
		binary.LittleEndian.PutUint64(g.blk[j:], splitmix64(seed+uint64(j)))
	}
	g.blkNo, g.have = k, true
}

// fill writes the next len(p) bytes of the stream into p and advances.
func (g *pattern) fill(p []byte) {
	for len(p) > 0 {
		k := g.off / patternBlock
		if !g.have || g.blkNo != k {
			g.makeBlock(k)
		}
		n := copy(p, g.blk[g.off%patternBlock:])
		p = p[n:]
		g.off += uint64(n)
	}
}

// verifier checks that received bytes continue stream id. It is not safe for
// concurrent use.
type verifier struct {
	gen     pattern
	scratch []byte
}

// newVerifier returns a verifier of stream id expecting offset 0 next.
func newVerifier(id uint64) *verifier { return &verifier{gen: pattern{id: id}} }

// offset returns the number of bytes verified so far.
func (v *verifier) offset() uint64 { return v.gen.off }

// check verifies p as the next bytes of the stream. On a mismatch it returns
// an error naming the absolute offset of the first wrong byte and, when the
// received bytes contain a block header, the block they claim to be; the
// verifier then no longer advances.
func (v *verifier) check(p []byte) error {
	if cap(v.scratch) < len(p) {
		v.scratch = make([]byte, len(p))
	}
	want := v.scratch[:len(p)]
	start := v.gen.off
	v.gen.fill(want)
	if bytes.Equal(want, p) {
		return nil
	}
	v.gen.off = start
	i := 0
	for i < len(p) && p[i] == want[i] {
		i++
	}
	off := start + uint64(i)
	msg := fmt.Sprintf("dualbench: stream %d: byte %d is %#02x, want %#02x", v.gen.id, off, p[i], want[i])
	// Describe the block the received bytes claim to be, if a header is in p.
	hdr := int((patternBlock - start%patternBlock) % patternBlock)
	if hdr+patternHeader <= len(p) {
		msg += fmt.Sprintf(" (received block header at offset %d says block %d of stream %d; want block %d of stream %d)",
			start+uint64(hdr), binary.BigEndian.Uint64(p[hdr:]), binary.BigEndian.Uint64(p[hdr+8:]),
			(start+uint64(hdr))/patternBlock, v.gen.id)
	}
	return errors.New(msg)
}
