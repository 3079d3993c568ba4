package legacy

import "crypto/rc4"

// initialRing is the first allocation of a resend ring; it doubles up to the
// configured resend buffer so that quiet sessions stay small.
const initialRing = 4 << 10

// ring is the resend buffer: the last bytes written to the session, exactly
// as they went (or will go) on the wire, indexed by stream offset.
//
// It retains the offsets [end−retained, end) where retained = min(end,
// len(buf)); the byte at offset o lives at buf[o % len(buf)]. While len(buf)
// is below max the ring never wraps (it grows first), so re-laying it out on
// growth is a plain copy.
//
// The zero value is unusable; rings are guarded by Conn.mu.
type ring struct {
	buf []byte
	max int
	end uint64 // stream offset one past the last byte written
}

func newRing(max int) ring {
	return ring{buf: make([]byte, min(initialRing, max)), max: max}
}

// retained returns how many bytes before end the ring still holds.
func (r *ring) retained() uint64 {
	return min(r.end, uint64(len(r.buf)))
}

// holds reports whether every byte from offset off to end is retained.
func (r *ring) holds(off uint64) bool {
	return off <= r.end && r.end-off <= r.retained()
}

// write appends p, encrypting it with c when c is non-nil. The caller makes
// sure no unsent byte is overwritten (len(p) ≤ max − unsent).
func (r *ring) write(p []byte, c *rc4.Cipher) {
	for r.end+uint64(len(p)) > uint64(len(r.buf)) && len(r.buf) < r.max {
		nb := make([]byte, min(2*len(r.buf), r.max))
		copy(nb, r.buf[:r.end]) // not wrapped yet: offsets equal indexes
		r.buf = nb
	}
	for len(p) > 0 {
		i := int(r.end % uint64(len(r.buf)))
		n := copy(r.buf[i:], p)
		if c != nil {
			c.XORKeyStream(r.buf[i:i+n], r.buf[i:i+n])
		}
		p = p[n:]
		r.end += uint64(n)
	}
}

// read copies the bytes starting at offset off into dst; the caller checks
// holds(off) and off+len(dst) ≤ end.
func (r *ring) read(dst []byte, off uint64) {
	for len(dst) > 0 {
		i := int(off % uint64(len(r.buf)))
		n := copy(dst, r.buf[i:])
		dst = dst[n:]
		off += uint64(n)
	}
}
