package resume

import "sync"

// block is the unit of buffer memory. Blocks come from blockPool and go back
// as soon as the bytes in them are acknowledged or read, so an idle session
// holds no buffer memory.
type block [blockSize]byte

var blockPool = sync.Pool{New: func() any { return new(block) }}

// byteQueue holds the bytes [start, start+n) of one direction of a stream in
// pooled blocks. The zero value is an empty queue at offset 0. It is not safe
// for concurrent use; the session lock guards it.
type byteQueue struct {
	blocks []*block
	start  uint64 // stream offset of the first held byte
	head   int    // index of that byte in blocks[0]
	n      int    // bytes held
}

func (q *byteQueue) end() uint64 { return q.start + uint64(q.n) }

// append copies p to the end of the queue.
func (q *byteQueue) append(p []byte) {
	for len(p) > 0 {
		pos := q.head + q.n
		bi, off := pos/blockSize, pos%blockSize
		if bi == len(q.blocks) {
			q.blocks = append(q.blocks, blockPool.Get().(*block))
		}
		c := copy(q.blocks[bi][off:], p)
		q.n += c
		p = p[c:]
	}
}

// peek returns up to max contiguous bytes starting at stream offset off,
// which must lie in [start, end). The slice aliases the queue.
func (q *byteQueue) peek(off uint64, max int) []byte {
	pos := q.head + int(off-q.start)
	bi, o := pos/blockSize, pos%blockSize
	b := q.blocks[bi][o:]
	if rem := q.n - int(off-q.start); len(b) > rem {
		b = b[:rem]
	}
	if len(b) > max {
		b = b[:max]
	}
	return b
}

// discard drops the bytes below offset upTo and returns freed blocks to the pool.
func (q *byteQueue) discard(upTo uint64) {
	if upTo <= q.start {
		return
	}
	d := int(min(upTo-q.start, uint64(q.n)))
	q.start += uint64(d)
	q.n -= d
	q.head += d
	for q.head >= blockSize || (q.n == 0 && len(q.blocks) > 0) {
		blockPool.Put(q.blocks[0])
		q.blocks[0] = nil
		q.blocks = q.blocks[1:]
		if q.head >= blockSize {
			q.head -= blockSize
		} else {
			q.head = 0
		}
		if len(q.blocks) == 0 {
			q.head = 0
			break
		}
	}
	if len(q.blocks) == 0 {
		q.blocks = nil
	}
}

// lend appends to dst slices aliasing the first min(n, max) bytes of the
// queue, in order. They stay valid until those bytes are discarded
// (appending does not move them).
func (q *byteQueue) lend(dst [][]byte, max int) [][]byte {
	off, left := q.start, min(q.n, max)
	for left > 0 {
		b := q.peek(off, left)
		dst = append(dst, b)
		off += uint64(len(b))
		left -= len(b)
	}
	return dst
}

// read copies bytes from the front into p and discards them.
func (q *byteQueue) read(p []byte) int {
	total := 0
	for len(p) > 0 && q.n > 0 {
		c := copy(p, q.peek(q.start, len(p)))
		p = p[c:]
		total += c
		q.discard(q.start + uint64(c))
	}
	return total
}

// reset empties the queue and moves it to offset off.
func (q *byteQueue) reset(off uint64) {
	q.discard(q.end())
	q.start, q.head, q.n = off, 0, 0
}

// boundary marks the end of a message in a stream.
type boundary struct {
	end  uint64
	text bool
}

// boundaries is a FIFO of message ends. The zero value is empty.
type boundaries struct{ b []boundary }

func (m *boundaries) push(end uint64, text bool) { m.b = append(m.b, boundary{end, text}) }

// pop drops every boundary at or below off.
func (m *boundaries) pop(off uint64) {
	i := 0
	for i < len(m.b) && m.b[i].end <= off {
		i++
	}
	if i == len(m.b) {
		m.b = nil
		return
	}
	m.b = m.b[i:]
}

// next returns the first boundary above off.
func (m *boundaries) next(off uint64) (boundary, bool) {
	for _, b := range m.b {
		if b.end > off {
			return b, true
		}
	}
	return boundary{}, false
}
