package resume

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf8"
)

// clientHello is the decoded client hello (docs/protocol.md §4.1) without
// its Noise payload, which only the handshake can read.
type clientHello struct {
	version   uint8
	suite     Suite
	pattern   Pattern
	resume    bool
	plain     bool // PLAIN_IN_TLS: the client offers plain-in-TLS frames (§5.7)
	sessionID [sessionIDLen]byte
	noiseMsg  []byte // aliases the input
}

// header returns the hello header, which is also part of the prologue.
func (h *clientHello) appendHeader(dst []byte) []byte {
	var flags byte
	if h.resume {
		flags |= flagResume
	}
	if h.plain {
		flags |= flagPlainInTLS
	}
	dst = append(dst, msgClientHello, h.version, byte(h.suite), byte(h.pattern), flags)
	if h.resume {
		dst = append(dst, h.sessionID[:]...)
	}
	return dst
}

// prologue returns the Noise prologue for this hello.
func (h *clientHello) prologue() []byte {
	return h.appendHeader([]byte(prologuePrefix))
}

// parseClientHello decodes the header of a client hello. Version, suite and
// pattern are returned as sent; the caller decides about support so that it
// can refuse with the matching code.
func parseClientHello(b []byte) (clientHello, error) {
	var h clientHello
	if len(b) < helloHeaderLen {
		return h, fmt.Errorf("resume: client hello of %d bytes: %w", len(b), errShort)
	}
	if b[0] != msgClientHello {
		return h, fmt.Errorf("resume: message type 0x%02x, want client hello: %w", b[0], errUnknown)
	}
	h.version, h.suite, h.pattern = b[1], Suite(b[2]), Pattern(b[3])
	flags := b[4]
	if flags&^(flagResume|flagPlainInTLS) != 0 {
		return h, fmt.Errorf("resume: client hello flags 0x%02x: reserved bits set", flags)
	}
	h.plain = flags&flagPlainInTLS != 0
	if h.plain && h.pattern == PatternNK {
		return h, fmt.Errorf("resume: client hello offers plain-in-TLS frames on a pinned (NK) handshake")
	}
	b = b[helloHeaderLen:]
	if flags&flagResume != 0 {
		h.resume = true
		if len(b) < sessionIDLen {
			return h, fmt.Errorf("resume: client hello session ID: %w", errShort)
		}
		copy(h.sessionID[:], b)
		b = b[sessionIDLen:]
	}
	if len(b) < dhLen {
		return h, fmt.Errorf("resume: client hello Noise message: %w", errShort)
	}
	h.noiseMsg = b
	return h, nil
}

// helloPayload is the Noise payload of the client hello.
type helloPayload struct {
	window  uint32
	counter uint64 // resume only
}

func (p *helloPayload) marshal(resume bool) []byte {
	b := binary.BigEndian.AppendUint32(nil, p.window)
	if resume {
		b = binary.BigEndian.AppendUint64(b, p.counter)
	}
	return b
}

func parseHelloPayload(b []byte, resume bool) (helloPayload, error) {
	var p helloPayload
	want := helloNewPayload
	if resume {
		want = helloResumePayload
	}
	if len(b) != want {
		return p, fmt.Errorf("resume: client hello payload of %d bytes, want %d: %w", len(b), want, errLength)
	}
	p.window = binary.BigEndian.Uint32(b)
	if resume {
		p.counter = binary.BigEndian.Uint64(b[4:])
	}
	if p.window < MinWindow || p.window > MaxWindow {
		return p, fmt.Errorf("resume: client window %d out of range", p.window)
	}
	return p, nil
}

// serverPayload is the Noise payload of the server hello (docs/protocol.md §4.2).
type serverPayload struct {
	sessionID [sessionIDLen]byte
	delivered uint64
	window    uint32
	ttl       uint32 // seconds
	// hasMode: the client offered PLAIN_IN_TLS, so the payload ends with
	// the frame mode byte; plain is that byte (1: plain-in-TLS, §5.7).
	hasMode, plain bool
}

func (p *serverPayload) marshal() []byte {
	b := make([]byte, 0, serverHelloPayload+1)
	b = append(b, p.sessionID[:]...)
	b = binary.BigEndian.AppendUint64(b, p.delivered)
	b = binary.BigEndian.AppendUint32(b, p.window)
	b = binary.BigEndian.AppendUint32(b, p.ttl)
	if p.hasMode {
		var mode byte
		if p.plain {
			mode = 1
		}
		b = append(b, mode)
	}
	return b
}

// parseServerPayload decodes a server hello payload; hasMode says whether
// the client hello offered PLAIN_IN_TLS, which decides the length.
func parseServerPayload(b []byte, hasMode bool) (serverPayload, error) {
	p := serverPayload{hasMode: hasMode}
	want := serverHelloPayload
	if hasMode {
		want++
	}
	if len(b) != want {
		return p, fmt.Errorf("resume: server hello payload of %d bytes, want %d: %w", len(b), want, errLength)
	}
	if hasMode {
		switch b[serverHelloPayload] {
		case 0:
		case 1:
			p.plain = true
		default:
			return p, fmt.Errorf("resume: server hello frame mode %d", b[serverHelloPayload])
		}
	}
	copy(p.sessionID[:], b)
	p.delivered = binary.BigEndian.Uint64(b[16:])
	p.window = binary.BigEndian.Uint32(b[24:])
	p.ttl = binary.BigEndian.Uint32(b[28:])
	if p.window < MinWindow || p.window > MaxWindow {
		return p, fmt.Errorf("resume: server window %d out of range", p.window)
	}
	return p, nil
}

// appendRefuse appends a refuse message (docs/protocol.md §4.3).
func appendRefuse(dst []byte, code CloseCode, reason string) []byte {
	reason = truncReason(reason)
	dst = append(dst, msgRefuse)
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	dst = append(dst, byte(len(reason)))
	return append(dst, reason...)
}

// parseRefuse decodes a refuse message into a *CloseError.
func parseRefuse(b []byte) (*CloseError, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("resume: refuse of %d bytes: %w", len(b), errShort)
	}
	if b[0] != msgRefuse {
		return nil, fmt.Errorf("resume: message type 0x%02x, want refuse: %w", b[0], errUnknown)
	}
	n := int(b[3])
	if n > maxReasonLen || len(b) != 4+n {
		return nil, fmt.Errorf("resume: refuse reason length %d of %d bytes: %w", n, len(b)-4, errLength)
	}
	if !utf8.Valid(b[4:]) {
		return nil, fmt.Errorf("resume: refuse reason is not UTF-8")
	}
	return &CloseError{Code: CloseCode(binary.BigEndian.Uint16(b[1:])), Reason: string(b[4:])}, nil
}

// readStreamMessage reads one length-prefixed message of the byte-stream
// carrier into a buffer from alloc(n), called only once the length n is known
// (so that a reader waiting for a message holds no buffer).
func readStreamMessage(r io.Reader, alloc func(n int) []byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n == 0 {
		return nil, fmt.Errorf("resume: stream message of length 0")
	}
	buf := alloc(n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// appendStreamMessage appends the length-prefixed form of msg.
func appendStreamMessage(dst, msg []byte) ([]byte, error) {
	if len(msg) == 0 || len(msg) > maxMessageLen {
		return nil, fmt.Errorf("resume: stream message of length %d", len(msg))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...), nil
}
