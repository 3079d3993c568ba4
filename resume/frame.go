package resume

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// frame is one decoded transport frame (docs/protocol.md §5). The meaning of
// num depends on the type: the delivered offset of CONFIRM and ACK, the
// offset of DATA, the opaque value of PING and PONG, the final offset of
// CLOSE. payload aliases the decoded buffer.
type frame struct {
	typ     byte
	flags   byte   // DATA
	num     uint64 // see above
	ack     uint64 // DATA
	code    CloseCode
	payload []byte // DATA payload, CLOSE reason
}

// appendFrame appends the plaintext encoding of f to dst.
func appendFrame(dst []byte, f *frame) []byte {
	dst = append(dst, f.typ)
	switch f.typ {
	case frameData:
		dst = append(dst, f.flags)
		dst = binary.BigEndian.AppendUint64(dst, f.num)
		dst = binary.BigEndian.AppendUint64(dst, f.ack)
		dst = append(dst, f.payload...)
	case frameClose:
		dst = binary.BigEndian.AppendUint64(dst, f.num)
		dst = binary.BigEndian.AppendUint16(dst, uint16(f.code))
		dst = append(dst, f.payload...)
	default:
		dst = binary.BigEndian.AppendUint64(dst, f.num)
	}
	return dst
}

// parseFrame decodes one plaintext frame. Every length mismatch and every
// reserved bit is an error, so that garbage never passes as a frame.
func parseFrame(b []byte) (frame, error) {
	var f frame
	if len(b) == 0 {
		return f, errShort
	}
	f.typ = b[0]
	switch f.typ {
	case frameConfirm, frameAck, framePing, framePong:
		if len(b) != ctrlFrameLen {
			return f, fmt.Errorf("resume: frame 0x%02x of %d bytes: %w", f.typ, len(b), errLength)
		}
		f.num = binary.BigEndian.Uint64(b[1:])
	case frameData:
		if len(b) < dataHeaderLen+1 {
			return f, fmt.Errorf("resume: DATA of %d bytes: %w", len(b), errShort)
		}
		if len(b)-dataHeaderLen > maxDataPayload {
			return f, fmt.Errorf("resume: DATA payload too long: %w", errLength)
		}
		f.flags = b[1]
		if f.flags&^(flagFIN|flagText) != 0 {
			return f, fmt.Errorf("resume: DATA flags 0x%02x: reserved bits set", f.flags)
		}
		f.num = binary.BigEndian.Uint64(b[2:])
		f.ack = binary.BigEndian.Uint64(b[10:])
		f.payload = b[dataHeaderLen:]
		if f.num+uint64(len(f.payload)) < f.num {
			return f, fmt.Errorf("resume: DATA offset overflows")
		}
	case frameClose:
		if len(b) < closeHeaderLen {
			return f, fmt.Errorf("resume: CLOSE of %d bytes: %w", len(b), errShort)
		}
		if len(b)-closeHeaderLen > maxReasonLen {
			return f, fmt.Errorf("resume: CLOSE reason too long: %w", errLength)
		}
		f.num = binary.BigEndian.Uint64(b[1:])
		f.code = CloseCode(binary.BigEndian.Uint16(b[9:]))
		f.payload = b[closeHeaderLen:]
		if !utf8.Valid(f.payload) {
			return f, fmt.Errorf("resume: CLOSE reason is not UTF-8")
		}
	default:
		return f, fmt.Errorf("resume: frame type 0x%02x: %w", f.typ, errUnknown)
	}
	return f, nil
}

// truncReason cuts a reason to the protocol limit on a rune boundary.
func truncReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	s = s[:maxReasonLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
