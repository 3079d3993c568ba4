package resume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzWSFrames writes arbitrary bytes from a raw TCP peer into one of our
// transports (the server end when client is false, the client end
// otherwise) and checks ReadMessage against wsRefDecode, a model of the
// framing rules: the same messages in the same order, then an error (never
// a panic or a hang), and on the wire back the pongs and the close frame
// the model expects.
func FuzzWSFrames(f *testing.F) {
	for _, s := range wsFuzzSeeds() {
		f.Add(s.data, s.client)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	f.Fuzz(func(t *testing.T, data []byte, client bool) {
		peer, ours := wsTCPPair(t, ln)
		tr := newWSConn(ours, client, nil)
		defer tr.closeNow() //nolint:errcheck

		// The peer writes the bytes and ends its side; it reads what our
		// transport sends back until the connection ends.
		out := make(chan []byte, 1)
		go func() {
			peer.Write(data)  //nolint:errcheck // our transport may close first
			peer.CloseWrite() //nolint:errcheck
			b, _ := io.ReadAll(peer)
			out <- b
		}()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		want := wsRefDecode(data, client)
		var got [][]byte
		var rerr error
		for rerr == nil {
			var msg []byte
			msg, rerr = tr.ReadMessage(ctx)
			if rerr == nil {
				if len(got) >= len(want.msgs) {
					t.Fatalf("message %d of %d B beyond the %d expected", len(got), len(msg), len(want.msgs))
				}
				got = append(got, append([]byte(nil), msg...))
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("ReadMessage hung: %v", rerr)
		}
		tr.closeNow() //nolint:errcheck
		if len(got) != len(want.msgs) {
			t.Fatalf("read %d messages, want %d (then %v)", len(got), len(want.msgs), rerr)
		}
		for i := range got {
			if !bytes.Equal(got[i], want.msgs[i]) {
				t.Fatalf("message %d: %x, want %x", i, got[i], want.msgs[i])
			}
		}
		switch want.end {
		case wsEndEOF:
			if !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Fatalf("want io.ErrUnexpectedEOF, got %v", rerr)
			}
		case wsEndEmpty:
			if CloseStatus(rerr) != CloseProtocolError {
				t.Fatalf("want a protocol error, got %v", rerr)
			}
		}

		var b []byte
		select {
		case b = <-out:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection was not closed")
		}
		// What our transport sent: each frame as the model says. The
		// connection may end with a reset (our end closed with unread
		// bytes), so the last frames may be missing; never a wrong one.
		r := bytes.NewReader(b)
		for i := 0; r.Len() > 0; i++ {
			fr, err := wsReadFrame(r)
			if err != nil {
				t.Fatalf("frame %d sent back: %v", i, err)
			}
			if fr.masked != client {
				t.Fatalf("frame %d sent back: masked %v", i, fr.masked)
			}
			if i >= len(want.out) {
				t.Fatalf("frame %d sent back (%#x %x) beyond the %d expected", i, fr.b0, fr.payload, len(want.out))
			}
			w := want.out[i]
			if fr.b0 != w.b0 {
				t.Fatalf("frame %d sent back: %#x, want %#x", i, fr.b0, w.b0)
			}
			if w.b0 == 0x88 && want.end == wsEndFail {
				if len(fr.payload) < 2 || !bytes.Equal(fr.payload[:2], w.payload) {
					t.Fatalf("close sent back: %x, want code %x", fr.payload, w.payload)
				}
			} else if !bytes.Equal(fr.payload, w.payload) {
				t.Fatalf("frame %d sent back: %x, want %x", i, fr.payload, w.payload)
			}
		}
	})
}

// wsTCPPair returns both ends of a fresh TCP connection to ln.
func wsTCPPair(tb testing.TB, ln net.Listener) (dialed, accepted *net.TCPConn) {
	tb.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c.(*net.TCPConn).SetLinger(0) //nolint:errcheck // no TIME_WAIT from thousands of runs
		c.Close()
		s.Close()
	})
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// How a stream of frames ends for wsRefDecode.
const (
	wsEndEOF       = iota // the bytes end (maybe inside a frame): io.ErrUnexpectedEOF
	wsEndEmpty            // an empty message: a protocol error, no close frame
	wsEndFail             // a violation: a close frame with a code, then closed
	wsEndPeerClose        // the peer's close frame: answered with its code
)

type wsRefResult struct {
	msgs [][]byte      // the messages ReadMessage returns
	out  []wsTestFrame // the frames sent back: pongs, then maybe a close
	end  int
}

// wsRefDecode is the model of the framing rules wsConn implements (RFC
// 6455 §5, binary messages of at most 65535 bytes), for a transport that is
// the client (expects unmasked frames) or the server (masked ones).
func wsRefDecode(data []byte, client bool) wsRefResult {
	var r wsRefResult
	fail := func(code uint16) wsRefResult {
		r.out = append(r.out, wsTestFrame{b0: 0x88, payload: binary.BigEndian.AppendUint16(nil, code)})
		r.end = wsEndFail
		return r
	}
	var frag []byte
	inFrag := false
	for {
		if len(data) < 2 {
			return r
		}
		fin, op := data[0]&0x80 != 0, data[0]&0x0F
		if data[0]&0x70 != 0 {
			return fail(1002)
		}
		masked := data[1]&0x80 != 0
		if masked == client {
			return fail(1002)
		}
		n, hl := uint64(data[1]&0x7F), 2
		switch n {
		case 126:
			if len(data) < 4 {
				return r
			}
			n, hl = uint64(binary.BigEndian.Uint16(data[2:])), 4
		case 127:
			if len(data) < 10 {
				return r
			}
			n, hl = binary.BigEndian.Uint64(data[2:]), 10
		}
		if op >= 8 && (n > 125 || !fin) {
			return fail(1002)
		}
		if op < 8 && n > 65535 {
			return fail(1009)
		}
		var key []byte
		if masked {
			if len(data) < hl+4 {
				return r
			}
			key = data[hl : hl+4]
			hl += 4
		}
		if uint64(len(data)-hl) < n {
			return r
		}
		p := append([]byte(nil), data[hl:hl+int(n)]...)
		for i := range p {
			if masked {
				p[i] ^= key[i%4]
			}
		}
		data = data[hl+int(n):]
		switch op {
		case 0x9:
			r.out = append(r.out, wsTestFrame{b0: 0x8A, payload: p})
		case 0xA:
		case 0x8:
			r.out = append(r.out, wsTestFrame{b0: 0x88, payload: p[:min(len(p), 2)]})
			r.end = wsEndPeerClose
			return r
		case 0x1:
			return fail(1003)
		case 0x2:
			if inFrag {
				return fail(1002)
			}
			if fin {
				if len(p) == 0 {
					r.end = wsEndEmpty
					return r
				}
				r.msgs = append(r.msgs, p)
			} else {
				frag, inFrag = p, true
			}
		case 0x0:
			if !inFrag {
				return fail(1002)
			}
			if len(frag)+len(p) > 65535 {
				return fail(1009)
			}
			frag = append(frag, p...)
			if fin {
				if len(frag) == 0 {
					r.end = wsEndEmpty
					return r
				}
				r.msgs = append(r.msgs, frag)
				frag, inFrag = nil, false
			}
		default:
			return fail(1002)
		}
	}
}

type wsFuzzSeed struct {
	name   string
	data   []byte
	client bool
}

// wsFuzzSeeds are the seed inputs (also in testdata/fuzz/FuzzWSFrames, in
// the go test fuzz v1 format).
func wsFuzzSeeds() []wsFuzzSeed {
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	m := func(b0 byte, p string) []byte { return wsFrame(b0, true, []byte(p)) }  // from a client
	u := func(b0 byte, p string) []byte { return wsFrame(b0, false, []byte(p)) } // from a server
	big := string(bytes.Repeat([]byte{'z'}, 300))
	return []wsFuzzSeed{
		{"server-valid", cat(m(0x82, "hello"), m(0x82, big)), false},
		{"client-valid", cat(u(0x82, "hello"), u(0x82, big)), true},
		{"server-fragmented", cat(m(0x02, "a"), m(0x89, "p"), m(0x00, "b"), m(0x80, "c")), false},
		{"client-fragmented", cat(u(0x02, "a"), u(0x8A, "p"), u(0x80, "bc")), true},
		{"server-control", cat(m(0x89, "ping"), m(0x8A, "pong"), m(0x88, "\x03\xe8bye")), false},
		{"client-close-1-byte", cat(u(0x89, ""), u(0x88, "\x03")), true},
		{"server-unmasked", u(0x82, "x"), false},
		{"client-masked", m(0x82, "x"), true},
		{"server-rsv", m(0xA2, "x"), false},
		{"server-text", m(0x81, "x"), false},
		{"server-reserved-op", m(0x8F, ""), false},
		{"server-len16", []byte{0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'}, false},
		{"server-len16-short", []byte{0x82, 0xFE, 0xFF}, false},
		{"client-len64", []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 1, 'a'}, true},
		{"client-len64-huge", []byte{0x82, 127, 0xFF, 0, 0, 0, 0, 0, 0, 1}, true},
		{"client-len64-65536", []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, true},
		{"server-ping-126", cat([]byte{0x89, 0xFE, 0, 126, 0, 0, 0, 0}, make([]byte, 126)), false},
		{"client-frag-too-big", cat(u(0x02, big), []byte{0x80, 126, 0xFF, 0xFF}, make([]byte, 65535)), true},
		{"server-truncated", m(0x82, big)[:50], false},
		{"client-empty", cat(u(0x02, ""), u(0x80, "")), true},
	}
}
