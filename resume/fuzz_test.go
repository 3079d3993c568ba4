package resume

import (
	"bytes"
	"testing"
)

func FuzzParseFrame(f *testing.F) {
	f.Add(appendFrame(nil, &frame{typ: frameData, flags: flagFIN, num: 5, ack: 9, payload: []byte("hi")}))
	f.Add(appendFrame(nil, &frame{typ: frameClose, num: 5, code: CloseNormal, payload: []byte("bye")}))
	f.Add(appendFrame(nil, &frame{typ: framePing, num: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			return
		}
		if enc := appendFrame(nil, &fr); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs: %x vs %x", enc, b)
		}
	})
}

func FuzzParseClientHello(f *testing.F) {
	h := clientHello{version: 1, suite: 1, pattern: 2, resume: true}
	f.Add(append(h.appendHeader(nil), make([]byte, 60)...))
	h.resume = false
	f.Add(append(h.appendHeader(nil), make([]byte, 36)...))
	h.pattern, h.plain = PatternNN, true
	f.Add(append(h.appendHeader(nil), make([]byte, 36)...))
	f.Add([]byte{1})
	key, _ := NewKey(bytes.Repeat([]byte{7}, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseClientHello(b)
		if err != nil {
			return
		}
		if enc := append(h.appendHeader(nil), h.noiseMsg...); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs")
		}
		// The server side of the handshake must reject garbage cleanly.
		psk := bytes.Repeat([]byte{1}, 32)
		readClientHello(h, psk, &key.kp, bytes.NewReader(make([]byte, 64))) //nolint:errcheck
	})
}

func FuzzServerPayload(f *testing.F) {
	f.Add((&serverPayload{window: DefaultWindow, ttl: 120}).marshal(), false)
	f.Add((&serverPayload{window: DefaultWindow, ttl: 120, hasMode: true, plain: true}).marshal(), true)
	f.Add((&serverPayload{window: DefaultWindow, ttl: 120, hasMode: true}).marshal(), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, hasMode bool) {
		p, err := parseServerPayload(b, hasMode)
		if err != nil {
			return
		}
		if !bytes.Equal(p.marshal(), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzHelloPayload(f *testing.F) {
	f.Add((&helloPayload{window: DefaultWindow, counter: 3}).marshal(true), true)
	f.Add((&helloPayload{window: DefaultWindow}).marshal(false), false)
	f.Fuzz(func(t *testing.T, b []byte, resume bool) {
		p, err := parseHelloPayload(b, resume)
		if err != nil {
			return
		}
		if !bytes.Equal(p.marshal(resume), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzRefuse(f *testing.F) {
	f.Add(appendRefuse(nil, CloseUnknownSession, "unknown session"))
	f.Add([]byte{3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ce, err := parseRefuse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(appendRefuse(nil, ce.Code, ce.Reason), b) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzStreamFraming(f *testing.F) {
	w, _ := appendStreamMessage(nil, []byte("hello"))
	f.Add(w)
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		total := 0
		for {
			m, err := readStreamMessage(r, mk)
			if err != nil {
				break
			}
			total += 2 + len(m)
		}
		if total > len(b) {
			t.Fatal("read beyond the input")
		}
	})
}

// FuzzServerHello feeds garbage to the client side of the handshake.
func FuzzServerHello(f *testing.F) {
	f.Add(append([]byte{msgServerHello}, make([]byte, 80)...))
	f.Add(appendRefuse(nil, CloseProofFailed, "x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, _, err := startClientHandshake(clientHello{version: 1, suite: SuiteAESGCM, pattern: PatternNN}, helloPayload{window: DefaultWindow}, nil, nil, bytes.NewReader(make([]byte, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ch.readServerHello(b); err == nil {
			t.Fatal("garbage server hello accepted")
		}
	})
}
