package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// upstreamKind says what an upstream does with the bytes it receives.
type upstreamKind int

const (
	upstreamSink    upstreamKind = iota // discard (or verify) everything
	upstreamEcho                        // write everything back
	upstreamBuiltin                     // the gateway's own builtin:echo route (no socket in dualbench)
)

// echoes reports whether bytes sent to an upstream of kind k come back.
func echoes(k upstreamKind) bool { return k == upstreamEcho || k == upstreamBuiltin }

// parseUpstreamKind maps the -upstream flag to a kind.
func parseUpstreamKind(s string) upstreamKind {
	switch s {
	case "echo":
		return upstreamEcho
	case "builtin":
		return upstreamBuiltin
	}
	return upstreamSink
}

// upstreamBufSize is the read buffer of one upstream connection.
const upstreamBufSize = 64 << 10

// upstream is a TCP server on loopback that plays the service behind the
// gateway (and behind the baselines). It is safe for concurrent use; Close
// stops it and waits for its goroutines.
type upstream struct {
	kind   upstreamKind
	verify bool // sink: check the DGBENCH1 prelude and pattern of every stream
	ln     net.Listener

	bytes    atomic.Int64 // received (sink) or echoed (echo)
	accepted atomic.Int64
	active   atomic.Int64

	// bufs holds the 64 KiB read buffers (*[]byte) between connections. In
	// sessions every session is a new connection, and a fresh buffer each
	// time cost dualbench about 4 % of its CPU (clearing a large object).
	bufs sync.Pool

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	streams map[uint64]*sinkStream // verify only
	closed  bool

	wg sync.WaitGroup
}

// sinkStream is what a verifying sink knows about one stream.
type sinkStream struct {
	bytes uint64 // verified bytes
	err   error  // first mismatch or read error other than EOF
	done  bool   // the connection ended
}

// startUpstream listens on addr (host:port, port 0 for a free one) and serves.
func startUpstream(kind upstreamKind, addr string, verify bool) (*upstream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dualbench: upstream: %w", err)
	}
	u := &upstream{kind: kind, verify: verify, ln: ln, conns: map[net.Conn]struct{}{}, streams: map[uint64]*sinkStream{}}
	u.bufs.New = func() any {
		// A small buffer for idle-heavy scenarios would not change the
		// gateway's figures; 64 KiB keeps the sink from being the bottleneck.
		b := make([]byte, upstreamBufSize)
		return &b
	}
	u.wg.Add(1)
	go u.acceptLoop()
	return u, nil
}

// addr returns the listening address.
func (u *upstream) addr() string { return u.ln.Addr().String() }

func (u *upstream) acceptLoop() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. EMFILE under the idle scenario: keep serving
		}
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			c.Close()
			return
		}
		u.conns[c] = struct{}{}
		u.wg.Add(1)
		u.mu.Unlock()
		u.accepted.Add(1)
		u.active.Add(1)
		go u.serve(c)
	}
}

func (u *upstream) serve(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		c.Close()
		u.active.Add(-1)
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
	}()
	if u.verify && u.kind == upstreamSink {
		u.serveVerify(c)
		return
	}
	bp := u.bufs.Get().(*[]byte)
	defer u.bufs.Put(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if u.kind == upstreamEcho {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			u.bytes.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

// serveVerify reads a prelude and then checks every byte of the stream.
func (u *upstream) serveVerify(c net.Conn) {
	pre := make([]byte, streamPreludeLen)
	if _, err := io.ReadFull(c, pre); err != nil {
		return
	}
	id, err := parsePrelude(pre)
	if err != nil {
		return
	}
	st := &sinkStream{}
	u.mu.Lock()
	if old, ok := u.streams[id]; ok && old.err == nil {
		st.err = fmt.Errorf("dualbench: sink: stream %d opened twice", id)
	}
	u.streams[id] = st
	u.mu.Unlock()
	v := newVerifier(id)
	bp := u.bufs.Get().(*[]byte)
	defer u.bufs.Put(bp)
	buf := *bp
	for {
		n, rerr := c.Read(buf)
		if n > 0 {
			verr := v.check(buf[:n])
			u.bytes.Add(int64(n))
			u.mu.Lock()
			st.bytes = v.offset()
			if verr != nil && st.err == nil {
				st.err = verr
			}
			u.mu.Unlock()
			if verr != nil {
				return
			}
		}
		if rerr != nil {
			u.mu.Lock()
			if !errors.Is(rerr, io.EOF) && st.err == nil {
				st.err = fmt.Errorf("dualbench: sink stream %d: %w", id, rerr)
			}
			st.done = true
			u.mu.Unlock()
			return
		}
	}
}

// stream returns a copy of what the sink knows about stream id.
func (u *upstream) stream(id uint64) (sinkStream, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	st, ok := u.streams[id]
	if !ok {
		return sinkStream{}, false
	}
	return *st, true
}

// Close stops accepting, closes every connection and waits for the
// goroutines.
func (u *upstream) Close() error {
	err := u.ln.Close()
	u.mu.Lock()
	u.closed = true
	for c := range u.conns {
		c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
	return err
}
