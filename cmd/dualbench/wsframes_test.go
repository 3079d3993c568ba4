package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// testMaskKey looks like frame headers, so a watcher that did not skip the
// masking key would misread the stream.
var testMaskKey = []byte{0x82, 0x7e, 0xff, 0x88}

// wsFrame encodes one WebSocket frame as a server (key nil: unmasked) or a
// client (masked with key) would.
func wsFrame(fin bool, opcode byte, payload, key []byte) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	var mask byte
	if key != nil {
		mask = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mask|byte(n))
	case n <= 0xffff:
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, key...)
	for i, b := range payload {
		if key != nil {
			b ^= key[i%4]
		}
		out = append(out, b)
	}
	return out
}

const (
	upgradeRequest  = "GET /bench-echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	upgradeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: dualgate.v1\r\n\r\n"
)

// at returns the synthetic time of byte offset (or chunk number) i.
func at(i int) time.Time { return time.Unix(0, int64(i)) }

// watchAll feeds stream in chunks of the given sizes, each at the time of
// its first byte's offset, and returns the messages seen.
func watchAll(t *testing.T, fromClient bool, stream []byte, chunk func() int) ([]wsMessage, error) {
	t.Helper()
	var got []wsMessage
	w := newWSWatcher(fromClient, func(m wsMessage) {
		if m.index != len(got) {
			t.Fatalf("message index %d after %d messages", m.index, len(got))
		}
		got = append(got, m)
	})
	var err error
	for off := 0; off < len(stream) && err == nil; {
		n := min(chunk(), len(stream)-off)
		err = w.feed(stream[off:off+n], at(off))
		off += n
	}
	return got, err
}

// lengths returns the lengths of ms.
func lengths(ms []wsMessage) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.length)
	}
	return out
}

// wsStream builds one direction of a connection and remembers the offsets
// of the first and last byte of every message (the HTTP head first).
type wsStream struct {
	b           []byte
	first, last []int
	lengths     []int
}

// head adds the HTTP head.
func (s *wsStream) head(h string) {
	s.first, s.last = append(s.first, len(s.b)), append(s.last, len(s.b)+len(h)-1)
	s.lengths = append(s.lengths, len(h))
	s.b = append(s.b, h...)
}

// frames adds one message as the given frames; payload counts the data
// frames' payload bytes.
func (s *wsStream) frames(payload int, frames ...[]byte) {
	s.first = append(s.first, len(s.b))
	for _, f := range frames {
		s.b = append(s.b, f...)
	}
	s.last = append(s.last, len(s.b)-1)
	s.lengths = append(s.lengths, payload)
}

// control adds a control frame, which is not a message.
func (s *wsStream) control(f []byte) { s.b = append(s.b, f...) }

// testStreams are a server → client and a client → server stream with
// every kind of frame the watcher must follow.
func testStreams() (server, client *wsStream) {
	server, client = &wsStream{}, &wsStream{}
	server.head(upgradeResponse)
	server.frames(81, wsFrame(true, 2, make([]byte, 81), nil))    // server hello
	server.control(wsFrame(true, 9, []byte("ping"), nil))         // not a message
	server.frames(25, wsFrame(true, 2, make([]byte, 25), nil))    // ACK
	server.frames(400, wsFrame(false, 2, make([]byte, 100), nil), // fragmented DATA …
		wsFrame(true, 10, nil, nil),              // … with a control frame between
		wsFrame(true, 0, make([]byte, 300), nil)) // … ends
	server.frames(0, wsFrame(true, 2, nil, nil)) // empty message
	server.frames(300, wsFrame(true, 2, make([]byte, 300), nil))

	key := testMaskKey
	client.head(upgradeRequest)
	client.frames(100, wsFrame(true, 2, bytes.Repeat([]byte{0x82}, 100), key)) // client hello
	client.frames(41, wsFrame(true, 2, make([]byte, 41), key))                 // CONFIRM
	client.control(wsFrame(true, 10, []byte("pong"), key))
	client.frames(130, wsFrame(false, 2, make([]byte, 7), key), wsFrame(true, 0, make([]byte, 123), key))
	client.frames(0, wsFrame(true, 1, nil, key))
	return server, client
}

func TestWSWatcherMessages(t *testing.T) {
	server, client := testStreams()
	// Longer frames: 16- and 64-bit lengths.
	server.frames(65535, wsFrame(true, 2, make([]byte, 65535), nil))
	server.frames(70000, wsFrame(true, 2, make([]byte, 70000), nil))
	client.frames(70000, wsFrame(true, 2, make([]byte, 70000), testMaskKey))
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range []struct {
		name       string
		fromClient bool
		stream     *wsStream
	}{{"server", false, server}, {"client", true, client}} {
		for _, max := range []int{1, 2, 3, 7, 100, 5000, 1 << 20} {
			got, err := watchAll(t, s.fromClient, s.stream.b, func() int { return 1 + rng.IntN(max) })
			if err != nil || !slices.Equal(lengths(got), s.stream.lengths) {
				t.Fatalf("%s, chunks ≤ %d: got %v, %v; want %v", s.name, max, lengths(got), err, s.stream.lengths)
			}
		}
	}
}

// TestWSWatcherTimes checks when messages start and end: fed one byte at a
// time, at exactly their first and last bytes; split in two at every byte
// boundary, in the chunk that holds them.
func TestWSWatcherTimes(t *testing.T) {
	server, client := testStreams()
	for _, s := range []struct {
		name       string
		fromClient bool
		stream     *wsStream
	}{{"server", false, server}, {"client", true, client}} {
		got, err := watchAll(t, s.fromClient, s.stream.b, func() int { return 1 })
		if err != nil || len(got) != len(s.stream.first) {
			t.Fatalf("%s bytewise: %d messages, %v; want %d", s.name, len(got), err, len(s.stream.first))
		}
		for i, m := range got {
			if m.start != at(s.stream.first[i]) || m.end != at(s.stream.last[i]) {
				t.Fatalf("%s bytewise message %d: bytes %d…%d, want %d…%d", s.name, i,
					m.start.UnixNano(), m.end.UnixNano(), s.stream.first[i], s.stream.last[i])
			}
		}
		for k := 1; k < len(s.stream.b); k++ {
			// Two chunks at times 0 and k: a byte before k passes at 0.
			chunkOf := func(off int) time.Time {
				if off < k {
					return at(0)
				}
				return at(k)
			}
			first := true
			got, err := watchAll(t, s.fromClient, s.stream.b, func() int {
				if first {
					first = false
					return k
				}
				return len(s.stream.b)
			})
			if err != nil || len(got) != len(s.stream.first) {
				t.Fatalf("%s split at %d: %d messages, %v", s.name, k, len(got), err)
			}
			for i, m := range got {
				if m.start != chunkOf(s.stream.first[i]) || m.end != chunkOf(s.stream.last[i]) || m.length != s.stream.lengths[i] {
					t.Fatalf("%s split at %d, message %d: %+v", s.name, k, i, m)
				}
			}
		}
	}
}

func TestWSWatcherRejects(t *testing.T) {
	resp, req := []byte(upgradeResponse), []byte(upgradeRequest)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		name       string
		fromClient bool
		stream     []byte
	}{
		{"reserved opcode", false, cat(resp, wsFrame(true, 3, nil, nil))},
		{"fragmented control", false, cat(resp, wsFrame(false, 9, nil, nil))},
		{"long control", false, cat(resp, wsFrame(true, 9, make([]byte, 126), nil))},
		{"huge length", false, cat(resp, []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0})},
		{"endless HTTP response", false, bytes.Repeat([]byte("X-Header: y\r\n"), 2000)},
		{"endless HTTP request", true, bytes.Repeat([]byte("X-Header: y\r\n"), 2000)},
		{"masked server frame", false, cat(resp, wsFrame(true, 2, []byte("x"), testMaskKey))},
		{"unmasked client frame", true, cat(req, wsFrame(true, 2, []byte("x"), nil))},
		{"continuation outside a message", false, cat(resp, wsFrame(true, 0, []byte("x"), nil))},
		{"message inside a fragmented one", true, cat(req, wsFrame(false, 2, []byte("x"), testMaskKey), wsFrame(true, 2, []byte("y"), testMaskKey))},
	} {
		_, err := watchAll(t, c.fromClient, c.stream, func() int { return 64 })
		if err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestWSWatcherTruncated(t *testing.T) {
	// A stream cut anywhere reports only the messages that completed.
	for _, fromClient := range []bool{false, true} {
		s := &wsStream{}
		var key []byte
		if fromClient {
			s.head(upgradeRequest)
			key = testMaskKey
		} else {
			s.head(upgradeResponse)
		}
		s.frames(200, wsFrame(true, 2, make([]byte, 200), key))
		s.frames(40, wsFrame(true, 2, make([]byte, 40), key))
		for n := range len(s.b) {
			got, err := watchAll(t, fromClient, s.b[:n], func() int { return 13 })
			if err != nil {
				t.Fatalf("client %t, cut at %d: %v", fromClient, n, err)
			}
			want := 0
			for _, last := range s.last {
				if last < n {
					want++
				}
			}
			if len(got) != want {
				t.Fatalf("client %t, cut at %d: %d messages, want %d", fromClient, n, len(got), want)
			}
		}
	}
}

func FuzzWSWatcher(f *testing.F) {
	f.Add(false, []byte(upgradeResponse+"\x82\x05hello\x89\x00\x02\x03abc\x80\x01d"))
	f.Add(false, []byte("\r\n\r\n\x82\x7e\x01\x00"))
	f.Add(true, []byte("\r\n\r\n\x82\xff\x00\x00\x00\x00\x00\x00\x00\x01mask"))
	f.Add(true, []byte(upgradeRequest+"\x82\x85\x82\x7e\xff\x88hello"))
	f.Fuzz(func(t *testing.T, fromClient bool, b []byte) {
		var whole []wsMessage
		w := newWSWatcher(fromClient, func(m wsMessage) { whole = append(whole, m) })
		errWhole := w.feed(b, at(0))
		// Byte-by-byte feeding must see the same messages and outcome.
		var bytewise []wsMessage
		w2 := newWSWatcher(fromClient, func(m wsMessage) { bytewise = append(bytewise, m) })
		var errBytes error
		for i := range b {
			if errBytes = w2.feed(b[i:i+1], at(i)); errBytes != nil {
				break
			}
		}
		if (errWhole == nil) != (errBytes == nil) || !slices.Equal(lengths(whole), lengths(bytewise)) {
			t.Fatalf("whole %v %v, bytewise %v %v", lengths(whole), errWhole, lengths(bytewise), errBytes)
		}
		for i, m := range bytewise {
			if m.length < 0 || m.index != i || m.end.Before(m.start) {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
	})
}
