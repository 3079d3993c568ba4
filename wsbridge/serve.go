package wsbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Acceptor yields sessions: resume.Server and legacy.Server both are.
type Acceptor[S net.Conn] interface {
	Accept() (S, error)
}

// Serve accepts sessions from acc and bridges each one, in a goroutine owned
// by b, to the upstream of its route, until Accept fails permanently, ctx
// ends, or b is drained or closed. Cancelling ctx stops accepting but not the
// bridges already running; Drain or Close ends those. It returns ErrBridgerClosed after Drain or
// Close, ctx.Err() when ctx ended and otherwise Accept's error (net.ErrClosed
// when the acceptor was closed). Temporary Accept errors are retried with a
// backoff of 5 ms doubling to 1 s.
//
// Serve cannot interrupt a blocked Accept: whoever owns the acceptor closes
// it to make Serve return (as with net/http's Serve and its listener). A
// session accepted after Drain began is closed with 1001 at once.
//
// Sessions are adapted with b's adapter for their type (resume sessions keep
// message boundaries and close codes); any other net.Conn is bridged as a
// byte stream on Options.DefaultRoute.
func Serve[S net.Conn](ctx context.Context, b *Bridger, acc Acceptor[S]) error {
	// Bridges outlive a cancelled ctx: only Drain and Close end them, so
	// that a signal context can stop the accept loop without cutting
	// sessions.
	bctx := context.WithoutCancel(ctx)
	var backoff time.Duration
	for {
		c, err := acc.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				backoff = nextBackoff(backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
					continue
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-b.ctx.Done():
					t.Stop()
					return ErrBridgerClosed
				}
			}
			return fmt.Errorf("wsbridge: accept: %w", err)
		}
		backoff = 0
		s := adaptSession(c)
		if ctx.Err() != nil {
			newSessionEnd(s).closeWithError(CloseGoingAway, "gateway is going away")
			return ctx.Err()
		}
		if !b.track() {
			newSessionEnd(s).closeWithError(CloseGoingAway, "gateway is going away")
			return ErrBridgerClosed
		}
		// The goroutine dials the upstream; an idle bridge keeps none.
		go b.startTracked(bctx, s, func(error) { b.wg.Done() })
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	if d *= 2; d > time.Second {
		d = time.Second
	}
	return d
}

// Drain stops new bridges, tells every bridged client that the gateway is
// going away (1001, so it reconnects elsewhere), delivers what each client
// sent before that to its upstream, closes the upstreams cleanly, and waits
// for all bridges to end. If ctx ends first, Drain closes what is left like
// Close and returns ctx's error. Drain is safe to call more than once and
// concurrently with Close.
func (b *Bridger) Drain(ctx context.Context) error {
	b.state.Lock()
	b.state.closing = true
	list := make([]*bridge, 0, len(b.state.active))
	for br := range b.state.active {
		list = append(list, br)
	}
	b.state.Unlock()
	// Side by side: a session whose client is away ends its close
	// exchange only by the close timeout. A resumable session starts its
	// close and returns (resume.Conn.StartClose: a timer, not a waiting
	// goroutine); others wait in these goroutines.
	var drains sync.WaitGroup
	for _, br := range list {
		drains.Go(br.drain)
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); drains.Wait(); close(done) }()
	select {
	case <-done:
		b.finish()
		return nil
	case <-ctx.Done():
		b.Close()
		waitBounded(done) //nolint:errcheck // Close reported what still runs
		return fmt.Errorf("wsbridge: drain: %w", ctx.Err())
	}
}

// closeWait bounds how long Close waits for bridges after closing them.
const closeWait = 15 * time.Second

// Close stops new bridges, closes every session (1001) and upstream at once
// and waits for all bridge goroutines to return. It is idempotent.
func (b *Bridger) Close() error {
	b.state.Lock()
	b.state.closing = true
	b.state.Unlock()
	b.cancel()
	// The bridges on b.ctx (Serve's) have no registration with it: they
	// are stopped here (those on a caller's context, derived from b.ctx,
	// are stopped by its end too; a hard stop runs once).
	b.state.Lock()
	for br := range b.state.active {
		go br.hardStopNow()
	}
	b.state.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	if err := waitBounded(done); err != nil {
		return err
	}
	b.finish()
	return nil
}

// finish releases what outlives bridges once all have ended.
func (b *Bridger) finish() {
	b.cancel()
	b.httpClient.CloseIdleConnections()
}
