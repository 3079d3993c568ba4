package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualgate/dualgate/resume"
	"github.com/prometheus/client_golang/prometheus"
)

// liveSession is one resumable session of the resume and chaos scenarios:
// its transports go through its own fault proxy, a writer sends the
// session's verifiable pattern and, for echo sessions, a reader verifies
// what comes back.
type liveSession struct {
	id    uint64
	up    upstreamKind
	proxy *faultProxy
	conn  *resume.Conn
	reg   *prometheus.Registry // the client's metrics of this session

	written  atomic.Uint64 // pattern bytes written (after the prelude for sink sessions)
	verified atomic.Uint64 // echo: pattern bytes read back and verified

	mu          sync.Mutex
	err         error     // first write, read or verification error
	detachedAt  time.Time // zero while connected
	detachedFor []time.Duration
	state       resume.State

	stopWrite atomic.Bool
	writers   sync.WaitGroup
	readers   sync.WaitGroup
}

// liveOptions shape the traffic of live sessions.
type liveOptions struct {
	maxSize   int  // largest message
	randSizes bool // message sizes uniformly in 1..maxSize (else always maxSize)
	rate      int  // bytes per second (0: unpaced)
	seed      uint64
}

// openLive starts a fault proxy in front of the gateway and dials a
// session through it.
func openLive(ctx context.Context, b *bench, id uint64, up upstreamKind, onSample func(resumeSample)) (*liveSession, error) {
	s := &liveSession{id: id, up: up, reg: prometheus.NewRegistry()}
	p, err := startFaultProxy(b.gwAddr, onSample)
	if err != nil {
		return nil, err
	}
	s.proxy = p
	hooks := &clientHooks{addr: p.addr(), direct: true, dial: p.dial, registerer: s.reg, onStateChange: s.stateChanged}
	dctx, cancel := context.WithTimeout(ctx, streamDialTimeout)
	defer cancel()
	c, err := b.dialGateway(dctx, "ws", up, hooks)
	if err != nil {
		p.Close()
		return nil, err
	}
	s.conn = c
	return s, nil
}

// stateChanged records how long the client was detached each time.
func (s *liveSession) stateChanged(st resume.State) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	switch st {
	case resume.StateDetached:
		s.detachedAt = now
	case resume.StateConnected:
		if !s.detachedAt.IsZero() {
			s.detachedFor = append(s.detachedFor, now.Sub(s.detachedAt))
			s.detachedAt = time.Time{}
		}
	}
}

// connected reports whether the client has a transport attached.
func (s *liveSession) connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == resume.StateConnected
}

func (s *liveSession) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = fmt.Errorf("session %d: %w", s.id, err)
	}
	s.mu.Unlock()
}

// firstErr returns the first error of the session.
func (s *liveSession) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// start runs the writer and, for echo sessions, the verifying reader.
func (s *liveSession) start(o liveOptions) {
	s.writers.Add(1)
	go s.write(o)
	if s.up == upstreamEcho {
		s.readers.Add(1)
		go s.read()
	}
}

func (s *liveSession) write(o liveOptions) {
	defer s.writers.Done()
	if s.up == upstreamSink {
		if _, err := s.conn.Write(appendPrelude(nil, s.id)); err != nil {
			s.fail(fmt.Errorf("write prelude: %w", err))
			return
		}
	}
	gen := newPattern(s.id)
	rng := rand.New(rand.NewPCG(o.seed, s.id))
	buf := make([]byte, o.maxSize)
	start := time.Now()
	for !s.stopWrite.Load() {
		n := o.maxSize
		if o.randSizes {
			n = 1 + rng.IntN(o.maxSize)
		}
		gen.fill(buf[:n])
		if _, err := s.conn.Write(buf[:n]); err != nil {
			if !s.stopWrite.Load() {
				s.fail(fmt.Errorf("write at offset %d: %w", gen.offset()-uint64(n), err))
			}
			return
		}
		w := s.written.Add(uint64(n))
		if o.rate > 0 {
			due := start.Add(time.Duration(float64(w) / float64(o.rate) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
}

func (s *liveSession) read() {
	defer s.readers.Done()
	v := newVerifier(s.id)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if n > 0 {
			if verr := v.check(buf[:n]); verr != nil {
				s.fail(verr)
				return
			}
			s.verified.Store(v.offset())
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.fail(fmt.Errorf("read at offset %d: %w", v.offset(), err))
			}
			return
		}
	}
}

// finish stops writing, waits until every written byte arrived where it
// should (echo: read back and verified; sink: verified by the sink after a
// clean close), and closes the session and its proxy. It returns the first
// error, including lost bytes.
func (s *liveSession) finish(b *bench, timeout time.Duration) error {
	s.stopWrite.Store(true)
	s.writers.Wait()
	deadline := time.Now().Add(timeout)
	want := s.written.Load()
	var err error
	if s.up == upstreamEcho {
		for s.verified.Load() < want && s.firstErr() == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := s.verified.Load(); got != want && s.firstErr() == nil {
			err = fmt.Errorf("session %d: %d of %d echoed bytes came back within %v", s.id, got, want, timeout)
		}
		closeConn(s.conn)
	} else {
		closeConn(s.conn) // a clean close delivers everything to the sink first
		var st sinkStream
		for time.Now().Before(deadline) {
			st, _ = b.sink.stream(s.id)
			if st.err != nil || st.bytes >= want && st.done {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		switch {
		case st.err != nil:
			err = fmt.Errorf("session %d: sink: %w", s.id, st.err)
		case st.bytes != want:
			err = fmt.Errorf("session %d: the sink verified %d of %d bytes within %v", s.id, st.bytes, want, timeout)
		}
	}
	s.readers.Wait()
	s.proxy.Close()
	if e := s.firstErr(); e != nil {
		return e
	}
	return err
}

// clientReplayed returns the bytes this session's client retransmitted.
func (s *liveSession) clientReplayed() float64 {
	mfs, err := s.reg.Gather()
	if err != nil {
		return 0
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == "dualgate_resume_bytes_replayed_total" {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// detachedSamples returns the client's detached durations.
func (s *liveSession) detachedSamples() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.detachedFor...)
}
