package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// wsWatcher follows one direction of a WebSocket connection (the HTTP
// upgrade request or response, then frames) without changing it, and reports
// every complete message with when its first and last bytes passed. The
// fault proxy uses two: gateway → client, to tell the resume protocol's
// messages apart by size (the first is the server hello, and after it every
// message of at least minDataMessage bytes is a DATA frame), and client →
// gateway, for the upgrade request, the client hello and CONFIRM. It is not
// safe for concurrent use.
type wsWatcher struct {
	onMessage  func(wsMessage)
	fromClient bool      // client → server: every frame is masked; server → client: none is
	now        time.Time // when the chunk being fed passes

	inHeaders bool
	hdrTail   []byte // last bytes of the HTTP head, to find CRLFCRLF
	hdrSeen   int    // bytes of the HTTP head so far

	frameHdr   [14]byte
	hdrN       int       // bytes of frameHdr filled
	frameStart time.Time // when the first byte of frameHdr passed
	left       uint64    // payload bytes left in the current frame
	cur        uint64    // payload length of the current frame
	inMsg      bool      // a data message has started and not ended
	msgStart   time.Time // when the first byte of the current message (or HTTP head) passed
	msgLen     uint64    // payload bytes of the current message so far
	fin        bool      // the current frame ends its message
	control    bool      // the current frame is a control frame
	messages   int
	err        error
}

// wsMessage is one complete message of a watched stream. start and end are
// the times of the chunks that carried its first and last bytes: a message
// is complete when its last byte passes.
type wsMessage struct {
	index      int // 0 is the HTTP head (request or response); WebSocket messages count from 1
	length     int // payload bytes (the HTTP head: its bytes, CRLFCRLF included)
	start, end time.Time
}

// minDataMessage is the smallest protocol message that is a DATA frame: the
// 18-byte DATA header, one payload byte and the 16-byte AEAD tag
// (docs/protocol.md §5). ACK, PING and PONG are 25 bytes; CLOSE can be
// larger but does not occur while a benchmark streams.
const minDataMessage = 18 + 1 + 16

// maxWatchedFrame bounds a frame (and so keeps message lengths far from
// overflowing): the gateway's messages are at most 64 KiB.
const maxWatchedFrame = 1 << 40

// maxHTTPHead bounds the upgrade request or response the watcher will skip.
const maxHTTPHead = 16 << 10

var errWSFrame = errors.New("dualbench: websocket stream")

// newWSWatcher returns a watcher expecting the HTTP head first: the
// upgrade request if fromClient, else the response.
func newWSWatcher(fromClient bool, onMessage func(wsMessage)) *wsWatcher {
	return &wsWatcher{onMessage: onMessage, fromClient: fromClient, inHeaders: true}
}

// feed consumes the next bytes of the stream, which pass at now. After the
// first error it ignores everything.
func (w *wsWatcher) feed(p []byte, now time.Time) error {
	w.now = now
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

// feedHeaders skips the HTTP head up to and including CRLFCRLF and reports
// it as message 0.
func (w *wsWatcher) feedHeaders(p []byte) []byte {
	if w.hdrSeen == 0 {
		w.msgStart = w.now
	}
	buf := append(w.hdrTail, p...)
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		used := i + 4 - len(w.hdrTail)
		w.hdrSeen += used
		w.inHeaders, w.hdrTail = false, nil
		w.emit(0, w.hdrSeen)
		return p[used:]
	}
	w.hdrSeen += len(p)
	if w.hdrSeen > maxHTTPHead {
		w.err = fmt.Errorf("%w: HTTP head longer than %d bytes", errWSFrame, maxHTTPHead)
		return nil
	}
	keep := min(len(buf), 3)
	w.hdrTail = append(w.hdrTail[:0], buf[len(buf)-keep:]...)
	return nil
}

// emit reports a message that ends with the current chunk.
func (w *wsWatcher) emit(index, length int) {
	if w.onMessage != nil {
		w.onMessage(wsMessage{index: index, length: length, start: w.msgStart, end: w.now})
	}
}

// feedFrameHeader collects a frame header (2 to 14 bytes).
func (w *wsWatcher) feedFrameHeader(p []byte) []byte {
	for len(p) > 0 {
		if w.hdrN == 0 {
			w.frameStart = w.now
		}
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

// startFrame interprets a complete frame header. The masking key, if any,
// is the last 4 bytes of h; the watcher never reads the payload, so it only
// checks that the frame is masked exactly when it comes from the client
// (RFC 6455 §5.1, §5.3).
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
	if masked := h[1]&0x80 != 0; masked != w.fromClient {
		w.err = fmt.Errorf("%w: masked %t, from the client %t", errWSFrame, masked, w.fromClient)
		return
	}
	switch {
	case opcode > 2 && opcode < 8 || opcode > 10:
		w.err = fmt.Errorf("%w: reserved opcode %d", errWSFrame, opcode)
		return
	case w.control && (!w.fin || length > 125):
		w.err = fmt.Errorf("%w: bad control frame", errWSFrame)
		return
	case opcode == 0 && !w.inMsg:
		w.err = fmt.Errorf("%w: continuation frame outside a message", errWSFrame)
		return
	case (opcode == 1 || opcode == 2) && w.inMsg:
		w.err = fmt.Errorf("%w: new message inside a fragmented one", errWSFrame)
		return
	case opcode == 1 || opcode == 2:
		w.inMsg, w.msgStart = true, w.frameStart
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
		w.inMsg = false
		w.emit(w.messages, int(w.msgLen))
		w.msgLen = 0
	}
}
