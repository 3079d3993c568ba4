package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// wsWatcher follows the server-to-client byte stream of a WebSocket
// connection (the HTTP 101 response, then frames) without changing it, and
// reports the length of every complete message. The fault proxy uses it to
// tell the resume protocol's messages apart by size: the first is the server
// hello, and after it every message of at least minDataMessage bytes is a
// DATA frame. It is not safe for concurrent use.
type wsWatcher struct {
	onMessage func(index int, length int) // index counts from 1

	inHeaders bool
	hdrTail   []byte // last bytes of the HTTP response, to find CRLFCRLF
	hdrSeen   int    // bytes of the HTTP response so far

	frameHdr [14]byte
	hdrN     int    // bytes of frameHdr filled
	left     uint64 // payload bytes left in the current frame
	cur      uint64 // payload length of the current frame
	msgLen   uint64 // payload bytes of the current message so far
	fin      bool   // the current frame ends its message
	control  bool   // the current frame is a control frame
	messages int
	err      error
}

// minDataMessage is the smallest protocol message that is a DATA frame: the
// 18-byte DATA header, one payload byte and the 16-byte AEAD tag
// (docs/protocol.md §5). ACK, PING and PONG are 25 bytes; CLOSE can be
// larger but does not occur while a benchmark streams.
const minDataMessage = 18 + 1 + 16

// maxWatchedFrame bounds a frame (and so keeps message lengths far from
// overflowing): the gateway's messages are at most 64 KiB.
const maxWatchedFrame = 1 << 40

// maxHTTPResponse bounds the upgrade response the watcher will skip.
const maxHTTPResponse = 16 << 10

var errWSFrame = errors.New("dualbench: websocket stream")

// newWSWatcher returns a watcher expecting the HTTP response first.
func newWSWatcher(onMessage func(index, length int)) *wsWatcher {
	return &wsWatcher{onMessage: onMessage, inHeaders: true}
}

// feed consumes the next bytes of the stream. After the first error it
// ignores everything.
func (w *wsWatcher) feed(p []byte) error {
	for len(p) > 0 && w.err == nil {
		switch {
		case w.inHeaders:
			p = w.feedHeaders(p)
		case w.left > 0:
			n := uint64(len(p))
			if n > w.left {
				n = w.left
			}
			w.left -= n
			p = p[n:]
			if w.left == 0 {
				w.endFrame()
			}
		default:
			p = w.feedFrameHeader(p)
		}
	}
	return w.err
}

// feedHeaders skips the HTTP response up to and including CRLFCRLF.
func (w *wsWatcher) feedHeaders(p []byte) []byte {
	buf := append(w.hdrTail, p...)
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		used := i + 4 - len(w.hdrTail)
		w.inHeaders, w.hdrTail = false, nil
		return p[used:]
	}
	w.hdrSeen += len(p)
	if w.hdrSeen > maxHTTPResponse {
		w.err = fmt.Errorf("%w: HTTP response longer than %d bytes", errWSFrame, maxHTTPResponse)
		return nil
	}
	keep := min(len(buf), 3)
	w.hdrTail = append(w.hdrTail[:0], buf[len(buf)-keep:]...)
	return nil
}

// feedFrameHeader collects a frame header (2 to 14 bytes).
func (w *wsWatcher) feedFrameHeader(p []byte) []byte {
	for len(p) > 0 {
		w.frameHdr[w.hdrN] = p[0]
		w.hdrN++
		p = p[1:]
		need, ok := wsHeaderLen(w.frameHdr[:w.hdrN])
		if !ok || w.hdrN < need {
			continue
		}
		w.startFrame(w.frameHdr[:need])
		w.hdrN = 0
		return p
	}
	return p
}

// wsHeaderLen returns the length of the frame header that h starts, once h
// holds the first two bytes.
func wsHeaderLen(h []byte) (int, bool) {
	if len(h) < 2 {
		return 0, false
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	return n, true
}

// startFrame interprets a complete frame header.
func (w *wsWatcher) startFrame(h []byte) {
	opcode := h[0] & 0x0f
	length := uint64(h[1] & 0x7f)
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
		if length > maxWatchedFrame {
			w.err = fmt.Errorf("%w: frame of %d bytes", errWSFrame, length)
			return
		}
	}
	w.fin = h[0]&0x80 != 0
	w.control = opcode >= 8
	switch {
	case opcode > 2 && opcode < 8 || opcode > 10:
		w.err = fmt.Errorf("%w: reserved opcode %d", errWSFrame, opcode)
		return
	case w.control && (!w.fin || length > 125):
		w.err = fmt.Errorf("%w: bad control frame", errWSFrame)
		return
	}
	w.left, w.cur = length, length
	if length == 0 {
		w.endFrame()
	}
}

// endFrame accounts a frame whose payload has passed.
func (w *wsWatcher) endFrame() {
	if w.control {
		return
	}
	w.msgLen += w.cur
	if w.fin {
		w.messages++
		if w.onMessage != nil {
			w.onMessage(w.messages, int(w.msgLen))
		}
		w.msgLen = 0
	}
}
