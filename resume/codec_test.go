package resume

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

func TestFrameRoundTrip(t *testing.T) {
	f := func(typSel uint8, flags uint8, num, ack uint64, code uint16, payload []byte) bool {
		types := []byte{frameConfirm, frameData, frameAck, framePing, framePong, frameClose}
		fr := frame{typ: types[int(typSel)%len(types)], num: num}
		switch fr.typ {
		case frameData:
			fr.flags = flags & (flagFIN | flagText)
			fr.ack = ack
			if len(payload) == 0 {
				payload = []byte{1}
			}
			fr.payload = payload
			if num+uint64(len(payload)) < num {
				fr.num = 0
			}
		case frameClose:
			fr.code = CloseCode(code)
			fr.payload = []byte(truncReason(string(bytes.ToValidUTF8(payload, nil))))
		}
		enc := appendFrame(nil, &fr)
		got, err := parseFrame(enc)
		if err != nil {
			t.Logf("%+v: %v", fr, err)
			return false
		}
		return bytes.Equal(appendFrame(nil, &got), enc)
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 10000}); err != nil {
		t.Fatal(err)
	}
}

func TestFrameRejects(t *testing.T) {
	good := [][]byte{
		appendFrame(nil, &frame{typ: frameConfirm, num: 3}),
		appendFrame(nil, &frame{typ: frameData, flags: flagFIN | flagText, num: 1, ack: 2, payload: []byte("xyz")}),
		appendFrame(nil, &frame{typ: frameAck, num: 3}),
		appendFrame(nil, &frame{typ: framePing, num: 3}),
		appendFrame(nil, &frame{typ: framePong, num: 3}),
		appendFrame(nil, &frame{typ: frameClose, num: 3, code: CloseNormal, payload: []byte("ok")}),
	}
	for _, g := range good {
		if _, err := parseFrame(g); err != nil {
			t.Fatalf("%x: %v", g, err)
		}
		// Every truncation is rejected (CLOSE: only below its header, as
		// its reason may be shorter).
		minLen := len(g)
		switch g[0] {
		case frameData:
			minLen = dataHeaderLen + 1
		case frameClose:
			minLen = closeHeaderLen
		}
		for i := 0; i < minLen; i++ {
			if _, err := parseFrame(g[:i]); err == nil {
				t.Fatalf("truncated %x accepted", g[:i])
			}
		}
	}
	bad := map[string][]byte{
		"unknown type":   {0x42, 0, 0, 0, 0, 0, 0, 0, 0},
		"long ack":       append(appendFrame(nil, &frame{typ: frameAck}), 0),
		"reserved flags": appendFrame(nil, &frame{typ: frameData, flags: 4, payload: []byte("x")}),
		"empty data":     appendFrame(nil, &frame{typ: frameData}),
		"long reason":    appendFrame(nil, &frame{typ: frameClose, payload: bytes.Repeat([]byte("a"), 124)}),
		"bad utf8":       appendFrame(nil, &frame{typ: frameClose, payload: []byte{0xff}}),
		"huge data":      appendFrame(nil, &frame{typ: frameData, payload: make([]byte, maxDataPayload+1)}),
		"overflow":       appendFrame(nil, &frame{typ: frameData, num: ^uint64(0), payload: []byte("xy")}),
	}
	for name, b := range bad {
		if _, err := parseFrame(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestPlainInTLSMessages checks the wire rules of plain-in-TLS frames
// (docs/protocol.md §5.7): the flag only with NN, the mode byte only after
// the flag, and only the values 0 and 1.
func TestPlainInTLSMessages(t *testing.T) {
	nn := clientHello{version: 1, suite: SuiteAESGCM, pattern: PatternNN, plain: true}
	msg := append(nn.appendHeader(nil), make([]byte, 36)...)
	if msg[4] != flagPlainInTLS {
		t.Fatalf("flags byte 0x%02x, want 0x%02x", msg[4], flagPlainInTLS)
	}
	if h, err := parseClientHello(msg); err != nil || !h.plain {
		t.Fatalf("NN hello with PLAIN_IN_TLS: %+v %v", h, err)
	}
	nk := nn
	nk.pattern = PatternNK
	if _, err := parseClientHello(append(nk.appendHeader(nil), make([]byte, 52)...)); err == nil {
		t.Fatal("NK hello with PLAIN_IN_TLS accepted")
	}
	bad := append(nn.appendHeader(nil), make([]byte, 36)...)
	bad[4] = 0x04
	if _, err := parseClientHello(bad); err == nil {
		t.Fatal("reserved flag bit 2 accepted")
	}
	sp := serverPayload{window: DefaultWindow, ttl: 1, hasMode: true, plain: true}
	enc := sp.marshal()
	if len(enc) != serverHelloPayload+1 || enc[serverHelloPayload] != 1 {
		t.Fatalf("server payload %x", enc)
	}
	for _, mode := range []byte{2, 0x80, 0xff} {
		enc[serverHelloPayload] = mode
		if _, err := parseServerPayload(enc, true); err == nil {
			t.Fatalf("frame mode %d accepted", mode)
		}
	}
}

func TestHandshakeMessagesRoundTrip(t *testing.T) {
	for i := 0; i < 2000; i++ {
		h := clientHello{version: 1, suite: Suite(1 + rand.IntN(2)), pattern: Pattern(1 + rand.IntN(2)), resume: rand.IntN(2) == 0}
		h.plain = h.pattern == PatternNN && rand.IntN(2) == 0
		for j := range h.sessionID {
			h.sessionID[j] = byte(rand.Uint32())
		}
		if !h.resume {
			h.sessionID = [16]byte{}
		}
		noiseMsg := make([]byte, 32+rand.IntN(64))
		msg := append(h.appendHeader(nil), noiseMsg...)
		got, err := parseClientHello(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got.suite != h.suite || got.pattern != h.pattern || got.resume != h.resume || got.plain != h.plain || got.sessionID != h.sessionID || !bytes.Equal(got.noiseMsg, noiseMsg) {
			t.Fatalf("client hello round trip: %+v vs %+v", got, h)
		}
		hdr := len(h.appendHeader(nil))
		for k := 0; k < hdr+32; k++ {
			if _, err := parseClientHello(msg[:k]); err == nil {
				t.Fatalf("truncated client hello of %d bytes accepted", k)
			}
		}
		sp := serverPayload{sessionID: h.sessionID, delivered: rand.Uint64(), window: uint32(MinWindow + rand.IntN(MaxWindow-MinWindow)), ttl: rand.Uint32(),
			hasMode: h.plain, plain: h.plain && rand.IntN(2) == 0}
		enc := sp.marshal()
		gsp, err := parseServerPayload(enc, h.plain)
		if err != nil || gsp != sp {
			t.Fatalf("server payload: %+v %v", gsp, err)
		}
		for k := 0; k < len(enc); k++ {
			if _, err := parseServerPayload(enc[:k], h.plain); err == nil {
				t.Fatal("truncated server payload accepted")
			}
		}
		// The frame mode byte is there exactly when the hello offered it.
		if _, err := parseServerPayload(enc, !h.plain); err == nil {
			t.Fatalf("server payload of %d bytes accepted with offered=%v", len(enc), !h.plain)
		}
		hp := helloPayload{window: sp.window, counter: rand.Uint64()}
		if !h.resume {
			hp.counter = 0
		}
		ghp, err := parseHelloPayload(hp.marshal(h.resume), h.resume)
		if err != nil || ghp != hp {
			t.Fatalf("hello payload: %+v %v", ghp, err)
		}
		reason := string(bytes.Repeat([]byte("r"), rand.IntN(124)))
		ref := appendRefuse(nil, CloseCode(rand.Uint32()), reason)
		ce, err := parseRefuse(ref)
		if err != nil || ce.Reason != reason {
			t.Fatalf("refuse: %v %v", ce, err)
		}
		for k := 0; k < len(ref); k++ {
			if _, err := parseRefuse(ref[:k]); err == nil {
				t.Fatal("truncated refuse accepted")
			}
		}
	}
	if _, err := parseHelloPayload(binary.BigEndian.AppendUint32(nil, 100), false); err == nil {
		t.Fatal("tiny window accepted")
	}
	if _, err := parseClientHello(append([]byte{1, 1, 1, 1, 4}, make([]byte, 60)...)); err == nil {
		t.Fatal("reserved hello flag accepted")
	}
}

func TestStreamFraming(t *testing.T) {
	var wire []byte
	msgs := [][]byte{{1}, bytes.Repeat([]byte{2}, 300), bytes.Repeat([]byte{3}, maxMessageLen)}
	for _, m := range msgs {
		var err error
		if wire, err = appendStreamMessage(wire, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(wire)
	for _, m := range msgs {
		got, err := readStreamMessage(r, mk)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("stream message: %d bytes, %v", len(got), err)
		}
	}
	for k := 1; k < 2+300; k++ {
		w, _ := appendStreamMessage(nil, msgs[1])
		if _, err := readStreamMessage(bytes.NewReader(w[:k]), mk); err == nil {
			t.Fatalf("truncated stream message of %d bytes accepted", k)
		}
	}
	if _, err := readStreamMessage(bytes.NewReader([]byte{0, 0}), mk); err == nil {
		t.Fatal("zero length accepted")
	}
	if _, err := appendStreamMessage(nil, make([]byte, maxMessageLen+1)); err == nil {
		t.Fatal("oversized message framed")
	}
}

func TestByteQueue(t *testing.T) {
	var q byteQueue
	var ref []byte
	base := uint64(0)
	for i := 0; i < 3000; i++ {
		switch rand.IntN(3) {
		case 0, 1:
			p := make([]byte, rand.IntN(3*blockSize))
			for j := range p {
				p[j] = byte(rand.Uint32())
			}
			q.append(p)
			ref = append(ref, p...)
		case 2:
			d := uint64(rand.IntN(len(ref) + 1))
			q.discard(base + d)
			ref = ref[d:]
			base += d
		}
		if q.start != base || q.n != len(ref) {
			t.Fatalf("queue at %d+%d, want %d+%d", q.start, q.n, base, len(ref))
		}
		if len(ref) > 0 {
			off := rand.IntN(len(ref))
			p := q.peek(base+uint64(off), 1<<20)
			if !bytes.Equal(p, ref[off:off+len(p)]) || len(p) == 0 {
				t.Fatal("peek mismatch")
			}
		}
	}
	q.reset(q.end())
	if q.blocks != nil {
		t.Fatal("blocks held after reset")
	}
}

func mk(n int) []byte { return make([]byte, n) }
