package main

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// wsFrame encodes one WebSocket frame as a server (unmasked) or client
// (masked, with a zero key) would.
func wsFrame(fin bool, opcode byte, payload []byte, masked bool) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	var mask byte
	if masked {
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
	if masked {
		out = append(out, 0, 0, 0, 0)
	}
	return append(out, payload...)
}

const upgradeResponse = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: dualgate.v1\r\n\r\n"

// watchAll feeds stream in chunks of the given sizes and returns the
// message lengths seen.
func watchAll(t *testing.T, stream []byte, chunk func() int) ([]int, error) {
	t.Helper()
	var got []int
	w := newWSWatcher(func(index, length int) {
		if index != len(got)+1 {
			t.Fatalf("message index %d after %d messages", index, len(got))
		}
		got = append(got, length)
	})
	var err error
	for len(stream) > 0 && err == nil {
		n := min(chunk(), len(stream))
		err = w.feed(stream[:n])
		stream = stream[n:]
	}
	return got, err
}

func TestWSWatcherMessages(t *testing.T) {
	var s []byte
	s = append(s, upgradeResponse...)
	s = append(s, wsFrame(true, 2, make([]byte, 81), false)...)    // server hello
	s = append(s, wsFrame(true, 9, []byte("ping"), false)...)      // control: not a message
	s = append(s, wsFrame(true, 2, make([]byte, 25), false)...)    // ACK
	s = append(s, wsFrame(false, 2, make([]byte, 100), false)...)  // fragmented DATA …
	s = append(s, wsFrame(true, 10, nil, false)...)                // … with a control frame between
	s = append(s, wsFrame(true, 0, make([]byte, 300), false)...)   // … ends
	s = append(s, wsFrame(true, 2, make([]byte, 65535), false)...) // 16-bit length
	s = append(s, wsFrame(true, 2, make([]byte, 70000), false)...) // 64-bit length
	s = append(s, wsFrame(true, 2, make([]byte, 35), true)...)     // masked (client side)
	s = append(s, wsFrame(true, 2, nil, false)...)                 // empty message
	want := []int{81, 25, 400, 65535, 70000, 35, 0}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, max := range []int{1, 2, 3, 7, 100, 5000, 1 << 20} {
		got, err := watchAll(t, s, func() int { return 1 + rng.IntN(max) })
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("chunks ≤ %d: got %v, %v; want %v", max, got, err, want)
		}
	}
}

func TestWSWatcherRejects(t *testing.T) {
	for name, stream := range map[string][]byte{
		"reserved opcode":       append([]byte(upgradeResponse), wsFrame(true, 3, nil, false)...),
		"fragmented control":    append([]byte(upgradeResponse), wsFrame(false, 9, nil, false)...),
		"long control":          append([]byte(upgradeResponse), wsFrame(true, 9, make([]byte, 126), false)...),
		"huge length":           append([]byte(upgradeResponse), 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0),
		"endless HTTP response": bytes.Repeat([]byte("X-Header: y\r\n"), 2000),
	} {
		_, err := watchAll(t, stream, func() int { return 64 })
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWSWatcherTruncated(t *testing.T) {
	// A stream cut anywhere reports only the messages that completed.
	s := append([]byte(upgradeResponse), wsFrame(true, 2, make([]byte, 200), false)...)
	s = append(s, wsFrame(true, 2, make([]byte, 40), false)...)
	full := len(s)
	for n := range full {
		got, err := watchAll(t, s[:n], func() int { return 13 })
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		want := 0
		if n >= full-42 {
			want = 1
		}
		if len(got) != want {
			t.Fatalf("cut at %d: %d messages, want %d", n, len(got), want)
		}
	}
}

func FuzzWSWatcher(f *testing.F) {
	f.Add([]byte(upgradeResponse + "\x82\x05hello\x89\x00\x02\x03abc\x80\x01d"))
	f.Add([]byte("\r\n\r\n\x82\x7e\x01\x00"))
	f.Add([]byte("\r\n\r\n\x82\xff\x00\x00\x00\x00\x00\x00\x00\x01mask"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var whole []int
		w := newWSWatcher(func(_, n int) { whole = append(whole, n) })
		errWhole := w.feed(b)
		// Byte-by-byte feeding must see the same messages and outcome.
		var bytewise []int
		w2 := newWSWatcher(func(_, n int) { bytewise = append(bytewise, n) })
		var errBytes error
		for i := range b {
			if errBytes = w2.feed(b[i : i+1]); errBytes != nil {
				break
			}
		}
		if (errWhole == nil) != (errBytes == nil) || !slices.Equal(whole, bytewise) {
			t.Fatalf("whole %v %v, bytewise %v %v", whole, errWhole, bytewise, errBytes)
		}
		for _, n := range whole {
			if n < 0 {
				t.Fatalf("negative message length %d", n)
			}
		}
	})
}
