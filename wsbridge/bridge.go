package wsbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrBridgerClosed is returned by Bridge and Serve once Drain or Close has
// begun. It wraps net.ErrClosed.
var ErrBridgerClosed = fmt.Errorf("wsbridge: bridger closed: %w", net.ErrClosed)

// Bridger connects sessions to their route's upstream: one upstream
// connection per session, opened when the session starts and closed when it
// ends. Create one with New; the zero value is not usable. A Bridger is safe
// for concurrent use. It owns every goroutine it starts: Drain and Close stop
// them all.
type Bridger struct {
	o          Options
	log        *slog.Logger
	m          *bridgeMetrics
	routes     atomic.Pointer[Routes]
	httpClient *http.Client
	bufPool    sync.Pool // *[]byte of o.BufferSize

	// ctx is cancelled by Close: every bridge tears down at once.
	ctx    context.Context
	cancel context.CancelFunc

	state struct {
		sync.Mutex
		closing bool                 // Drain or Close began: no new bridges
		active  map[*bridge]struct{} // bridges between dial and teardown
	}
	wg sync.WaitGroup // every running Bridge call and Serve-spawned goroutine
}

// New returns a Bridger for the route table (which may be replaced later with
// SetRoutes). It fails only when the metrics cannot be registered.
func New(routes *Routes, opts *Options) (*Bridger, error) {
	o := opts.cloneWithDefaults()
	m, err := newBridgeMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Bridger{o: o, log: o.Logger, m: m, httpClient: newUpstreamHTTPClient(o.UpstreamTLSConfig)}
	b.routes.Store(routes)
	b.bufPool.New = func() any { p := make([]byte, o.BufferSize); return &p }
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.state.active = make(map[*bridge]struct{})
	return b, nil
}

// SetRoutes replaces the route table for sessions that start from now on;
// running bridges keep their upstream.
func (b *Bridger) SetRoutes(routes *Routes) { b.routes.Store(routes) }

// Routes returns the current route table.
func (b *Bridger) Routes() *Routes { return b.routes.Load() }

// Active returns the number of sessions currently bridged.
func (b *Bridger) Active() int {
	b.state.Lock()
	defer b.state.Unlock()
	return len(b.state.active)
}

// track registers one goroutine with the Bridger unless it is closing.
func (b *Bridger) track() bool {
	b.state.Lock()
	defer b.state.Unlock()
	if b.state.closing {
		return false
	}
	b.wg.Add(1)
	return true
}

// bridge is the state of one bridged session.
type bridge struct {
	route string

	mu       sync.Mutex
	drained  bool   // Drain asked the bridge to go away cleanly
	onDrain  func() // run (once) by drain while the loops run
	c2uDone  bool   // the session-to-upstream loop ended first
	u2cFirst bool   // the upstream-to-session loop ended first and acted

	// The hard stop of a bridge running on the Bridger's own context
	// (Serve's): Close runs it, found through state.active, so that such a
	// bridge needs no registration with the context.
	hardStop func()        // closes both ends; nil until armed
	hardRan  bool          // hardStop ran or runs
	hardDone chan struct{} // closed once hardStop returned (made when it starts)
}

// armHardStop makes stop the bridge's hard stop.
func (br *bridge) armHardStop(stop func()) {
	br.mu.Lock()
	br.hardStop = stop
	br.mu.Unlock()
}

// hardStopNow runs the armed hard stop unless it ran or was disarmed.
func (br *bridge) hardStopNow() {
	br.mu.Lock()
	stop := br.hardStop
	if stop == nil || br.hardRan {
		br.mu.Unlock()
		return
	}
	br.hardRan = true
	br.hardDone = make(chan struct{})
	br.mu.Unlock()
	defer close(br.hardDone)
	stop()
}

// disarmHardStop keeps the hard stop from running; it reports false when
// the stop ran or runs (like the stop function of context.AfterFunc).
func (br *bridge) disarmHardStop() bool {
	br.mu.Lock()
	defer br.mu.Unlock()
	br.hardStop = nil
	return !br.hardRan
}

// waitHardStop waits for a hard stop that ran or runs to return.
func (br *bridge) waitHardStop() {
	br.mu.Lock()
	done := br.hardDone
	br.mu.Unlock()
	if done != nil {
		<-done
	}
}

// drain asks the bridge to go away cleanly: the session is closed with 1001
// once the loops run (at once if they already do).
func (br *bridge) drain() {
	br.mu.Lock()
	if br.drained {
		br.mu.Unlock()
		return
	}
	br.drained = true
	f := br.onDrain
	br.mu.Unlock()
	if f != nil {
		f()
	}
}

// setOnDrain installs f as drain's action, running it now if drain already
// happened.
func (br *bridge) setOnDrain(f func()) {
	br.mu.Lock()
	br.onDrain = f
	drained := br.drained
	br.mu.Unlock()
	if drained {
		f()
	}
}

// loopResult says why a copy loop ended: exactly one of the fields is set.
type loopResult struct {
	readErr  error // the source ended (io.EOF on a clean end)
	writeErr error // the destination refused the data
}

// Bridge bridges one session to the upstream of its route (from the
// session's Info, or Options.DefaultRoute) and blocks until both are closed.
// The session is always closed when Bridge returns: with 4010 if the
// upstream cannot be dialled, 4011 when the upstream ends, normally after a
// clean close by the client, and 1001 on Drain or Close. The error says why
// the bridge ended; it is nil after a clean close by either side.
func (b *Bridger) Bridge(ctx context.Context, s Session) error {
	if !b.track() {
		newSessionEnd(s).closeWithError(CloseGoingAway, "gateway is going away")
		return ErrBridgerClosed
	}
	done := make(chan error, 1)
	b.startTracked(ctx, s, func(err error) {
		b.wg.Done()
		done <- err
	})
	return <-done
}

// startTracked bridges s and calls done with Bridge's result when both ends
// are closed. It returns once the bridge runs: between a session and a
// byte-stream upstream that can both be waited on without a goroutine
// (pollEnd), the copying runs in short-lived goroutines and an idle bridge
// holds none of its own; otherwise startTracked returns at the end.
func (b *Bridger) startTracked(ctx context.Context, s Session, done func(error)) {
	se := newSessionEnd(s)
	inf := sessionInfo(s, &b.o)
	route, ok := b.routes.Load().Lookup(inf.Route)
	if !ok {
		err := &DialError{Route: inf.Route, Reason: "no_route", Err: errors.New("no such route")}
		b.m.dialErrors.WithLabelValues(inf.Route, err.Reason).Inc()
		b.m.ends.WithLabelValues(inf.Route, "no_route").Inc()
		b.log.Warn("wsbridge: session without a route", "route", inf.Route, "client", inf.RemoteAddr)
		se.closeWithError(CloseUpstreamUnreachable, err.clientReason())
		done(err)
		return
	}

	br := &bridge{route: route.Path}
	b.state.Lock()
	draining := b.state.closing
	b.state.active[br] = struct{}{}
	b.state.Unlock()
	if draining {
		br.drain()
	}

	// ctx ends with the caller's context or Close. A caller's context that
	// never ends (Serve's) needs no context per bridge: b.ctx is that one,
	// which saves an idle session a context, its registration and a map.
	cancel, stop := context.CancelFunc(func() {}), func() bool { return true }
	if ctx.Done() == nil {
		ctx = b.ctx
	} else {
		ctx, cancel = context.WithCancel(ctx)
		stop = context.AfterFunc(b.ctx, cancel)
	}
	var active prometheus.Gauge
	finish := func(end string, err error) {
		if active != nil {
			active.Dec()
			b.m.ends.WithLabelValues(route.Path, end).Inc()
			b.log.Debug("wsbridge: bridge ended", "route", route.Path, "client", inf.RemoteAddr, "how", end, "err", err)
		}
		stop()
		cancel()
		b.state.Lock()
		delete(b.state.active, br)
		b.state.Unlock()
		done(err)
	}

	dctx, dcancel := context.WithTimeout(ctx, b.o.DialTimeout)
	up, err := b.dial(dctx, route, inf, s)
	dcancel()
	if err != nil {
		var de *DialError
		reason := "upstream unreachable"
		if errors.As(err, &de) {
			b.m.dialErrors.WithLabelValues(route.Path, de.Reason).Inc()
			reason = de.clientReason()
		}
		b.m.ends.WithLabelValues(route.Path, "dial_error").Inc()
		b.log.Warn("wsbridge: upstream dial failed", "route", route.Path, "client", inf.RemoteAddr, "err", err)
		se.closeWithError(CloseUpstreamUnreachable, reason)
		finish("", err)
		return
	}

	active = b.m.active.WithLabelValues(route.Path)
	active.Inc()
	b.log.Debug("wsbridge: bridging", "route", route.Path, "client", inf.RemoteAddr, "upstream", route.Upstream.String())
	b.run(ctx, br, se, up, route.Path, finish)
}

// bridgeRun is one bridge between its start and its end.
type bridgeRun struct {
	b       *Bridger
	ctx     context.Context
	br      *bridge
	se      *sessionEnd
	up      endpoint
	route   string
	in, out prometheus.Counter

	u2c    chan loopResult // the upstream-to-session loop's result
	loops  sync.WaitGroup  // the upstream-to-session loop
	hard   func() bool     // disarms the hard stop; false when it ran or runs
	finish func(end string, err error)
}

// run copies both ways until one side ends, then closes both in the order
// that loses nothing: what one side sent before it ended is delivered to the
// other before that one is closed. It calls finish with how the bridge ended,
// from the calling goroutine or, when both ends are pollEnds, from the
// goroutine that saw the end.
func (b *Bridger) run(ctx context.Context, br *bridge, se *sessionEnd, up endpoint, route string, finish func(string, error)) {
	r := &bridgeRun{b: b, ctx: ctx, br: br, se: se, up: up, route: route, finish: finish,
		u2c: make(chan loopResult, 1)}
	// A hard stop (Close, or the caller's context) closes both ends, which
	// unblocks both loops. On the Bridger's own context Close runs it;
	// otherwise the context does.
	br.armHardStop(func() {
		up.close()
		se.closeWithError(CloseGoingAway, "gateway is shutting down")
	})
	if ctx == b.ctx {
		r.hard = br.disarmHardStop
		if ctx.Err() != nil { // Close came before the stop was armed
			go br.hardStopNow()
		}
	} else {
		unregister := context.AfterFunc(ctx, br.hardStopNow)
		r.hard = func() bool {
			unregister()
			return br.disarmHardStop()
		}
	}
	// Towards a byte-stream upstream message boundaries do not matter: the
	// session is read with Read into the loop's buffer.
	if _, ok := up.(*streamEnd); ok {
		se.bytes = true
	}
	r.in = b.m.bytes.WithLabelValues(route, "in")
	r.out = b.m.bytes.WithLabelValues(route, "out")

	// The session-to-upstream loop decides how the bridge ends; when the
	// upstream side ends first it acts itself (closing the session), which
	// ends the other loop.
	r.loops.Add(1)
	// Drain: tell the client to go elsewhere; what it sent before is still
	// delivered to the upstream by the session-to-upstream loop, which ends
	// once the session is closed. Only then is the upstream closed, cleanly.
	br.setOnDrain(func() { se.goAway("gateway is going away") })

	sp, sok := pollable(se)
	upp, uok := pollable(up)
	if sok && uok {
		b.startPump(ctx, upp, se, r.out, r.u2cEnded)
		b.startPump(ctx, sp, up, r.in, func(res loopResult) { r.end(res) })
		return
	}
	go func() { r.u2cEnded(b.copyLoop(ctx, up, se, r.out)) }()
	r.end(b.copyLoop(ctx, se, up, r.in))
}

// u2cEnded records the end of the upstream-to-session loop.
func (r *bridgeRun) u2cEnded(res loopResult) {
	defer r.loops.Done()
	br := r.br
	br.mu.Lock()
	first := !br.c2uDone && !br.drained && r.ctx.Err() == nil
	br.u2cFirst = first
	br.mu.Unlock()
	if first {
		r.b.upstreamEnded(r.ctx, r.se, r.up, res)
	}
	r.u2c <- res
}

// end finishes the bridge once the session-to-upstream loop ended with res.
func (r *bridgeRun) end(res loopResult) {
	how, err := r.closeBoth(res)
	r.br.mu.Lock()
	r.br.onDrain = nil
	r.br.mu.Unlock()
	r.loops.Wait()
	if !r.hard() { // it ran or runs: wait, so no goroutine outlives the bridge
		r.br.waitHardStop()
	}
	r.finish(how, err)
}

// closeBoth closes what the end of the session-to-upstream loop (with
// result res) requires, and returns how the bridge ended.
func (r *bridgeRun) closeBoth(res loopResult) (string, error) {
	b, ctx, se, up, route := r.b, r.ctx, r.se, r.up, r.route
	r.br.mu.Lock()
	u2cFirst, drained := r.br.u2cFirst, r.br.drained
	r.br.c2uDone = !u2cFirst
	r.br.mu.Unlock()

	switch {
	case u2cFirst:
		ur := <-r.u2c
		if ur.writeErr != nil {
			return "session_end", sessionErr(ur.writeErr)
		}
		if !isCleanEnd(ur.readErr) {
			b.log.Info("wsbridge: upstream failed", "route", route, "err", ur.readErr)
			return "upstream_error", fmt.Errorf("wsbridge: reading from upstream: %w", ur.readErr)
		}
		return "upstream_close", nil
	case ctx.Err() != nil:
		return "shutdown", ErrBridgerClosed
	case drained:
		b.finishUpstream(ctx, up, r.u2c)
		return "drain", nil
	case res.writeErr != nil: // the upstream stopped taking data
		se.closeWithError(CloseUpstreamClosed, upstreamReason(res.writeErr))
		up.close()
		return "upstream_error", fmt.Errorf("wsbridge: writing to upstream: %w", res.writeErr)
	case errors.Is(res.readErr, io.EOF): // clean close by the client
		// Tell the upstream, forward what it still sends, then close.
		b.finishUpstream(ctx, up, r.u2c)
		se.close()
		return "client_close", nil
	default: // the session ended otherwise (expired, closed by the server)
		se.close()
		b.finishUpstream(ctx, up, r.u2c)
		return "session_end", sessionErr(res.readErr)
	}
}

// upstreamEnded closes what the end of the upstream-to-session loop (with
// result r, before the other loop ended) requires.
func (b *Bridger) upstreamEnded(ctx context.Context, se *sessionEnd, up endpoint, r loopResult) {
	if r.writeErr != nil { // the session no longer takes data
		se.close()
		b.finishUpstream(ctx, up, resultChan(r))
		return
	}
	// The upstream ended; everything it sent has been handed to the
	// session, which sends it before its CLOSE.
	se.closeWithError(CloseUpstreamClosed, upstreamReason(r.readErr))
	up.close()
}

func resultChan(r loopResult) <-chan loopResult {
	ch := make(chan loopResult, 1)
	ch <- r
	return ch
}

// finishUpstream ends the upstream cleanly once nothing more goes to it: it
// signals the end (TCP CloseWrite, WebSocket close frame, echo EOF), lets
// the upstream-to-session loop end (forwarding the upstream's last bytes if
// the session still takes them), discards what a byte-stream upstream still
// sends until its EOF so that closing sends FIN rather than RST, and closes
// it. All of it is bounded by Options.CloseTimeout. u2c yields the
// upstream-to-session loop's result.
func (b *Bridger) finishUpstream(ctx context.Context, up endpoint, u2c <-chan loopResult) {
	deadline := time.Now().Add(b.o.CloseTimeout)
	stream, isStream := up.(*streamEnd)
	if isStream {
		stream.c.SetReadDeadline(deadline)
	}
	up.closeWrite()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case r := <-u2c:
		if r.writeErr != nil && isStream { // the session is gone
			io.Copy(io.Discard, stream.c)
		}
	case <-t.C: // the caller closes the session, which ends the loop
	case <-ctx.Done():
	}
	up.close()
}

// copyLoop copies messages from src to dst until either fails.
func (b *Bridger) copyLoop(ctx context.Context, src, dst endpoint, ctr prometheus.Counter) loopResult {
	lb := loopBuf{pool: &b.bufPool}
	defer lb.release()
	for {
		typ, p, err := src.read(ctx, &lb)
		if len(p) > 0 {
			if werr := dst.write(ctx, typ, p); werr != nil {
				return loopResult{writeErr: werr}
			}
			ctr.Add(float64(len(p)))
		}
		if err != nil {
			return loopResult{readErr: err}
		}
	}
}

// isCleanEnd reports whether an upstream read error is an orderly end.
func isCleanEnd(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}

// upstreamReason is the close reason the client gets when the upstream ends.
func upstreamReason(err error) string {
	if errors.Is(err, io.EOF) {
		return "upstream closed the connection"
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason != "" {
			return truncReason(fmt.Sprintf("upstream closed the connection (%d): %s", ce.Code, ce.Reason))
		}
		return fmt.Sprintf("upstream closed the connection (%d)", ce.Code)
	}
	if errors.Is(err, errInvalidText) {
		return "upstream sent an invalid text message"
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return "upstream message too big"
	}
	return "upstream connection failed"
}

func sessionErr(err error) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("wsbridge: session: %w", err)
}
