package resume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/testenv"
	"github.com/dualgate/dualgate/resume/resumetest"
)

// pattern is the deterministic byte stream of one direction of one session.
type pattern struct{ r *rand.ChaCha8 }

func newPattern(idx uint64, dir byte) *pattern {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], idx)
	seed[8] = dir
	return &pattern{r: rand.NewChaCha8(seed)}
}

func (p *pattern) fill(b []byte) { p.r.Read(b) } //nolint:errcheck // never fails

// verified counts the bytes checked by verifyRead in this process.
var verified atomic.Int64

// verifyRead reads exactly n bytes from r and checks them against the pattern.
func verifyRead(r io.Reader, p *pattern, n int) error {
	buf := make([]byte, 32<<10)
	want := make([]byte, 32<<10)
	got := 0
	for got < n {
		m, err := r.Read(buf[:min(len(buf), n-got)])
		if m > 0 {
			p.fill(want[:m])
			if !bytes.Equal(buf[:m], want[:m]) {
				return fmt.Errorf("byte mismatch in [%d, %d)", got, got+m)
			}
			got += m
			verified.Add(int64(m))
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", got, n, err)
		}
	}
	return nil
}

// writePattern writes n pattern bytes in random-sized writes.
func writePattern(w io.Writer, p *pattern, n int) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		m := min(n, 1+rand.IntN(len(buf)))
		p.fill(buf[:m])
		if _, err := w.Write(buf[:m]); err != nil {
			return err
		}
		n -= m
	}
	return nil
}

func TestChaosHeavy(t *testing.T) {
	sessions := testenv.Scale(100, 12)
	total := testenv.Scale(256<<20, 32<<20)
	per := (total + 2*sessions - 1) / (2 * sessions) // at least total bytes in all
	verified.Store(0)
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sopts := &ServerOptions{Key: key, PingInterval: 150 * time.Millisecond, DeadTimeout: 1500 * time.Millisecond,
		HandshakeTimeout: 5 * time.Second, DetachedTTL: 90 * time.Second, CloseTimeout: 60 * time.Second,
		Window: 128 << 10}
	ts := newTestServer(t, sopts)
	budget := func() int64 {
		switch r := rand.IntN(20); {
		case r < 3:
			return rand.Int64N(160) // inside a handshake or a resume
		case r < 8:
			return rand.Int64N(3 << 20) // in the middle of a frame
		}
		return -1
	}
	ptcp := resumetest.NewProxy(t, ts.tcp.Addr().String())
	pws := resumetest.NewProxy(t, ts.http.Listener.Addr().String())
	ptcp.SetBudget(budget)
	pws.SetBudget(budget)

	var errMu sync.Mutex
	var errs []error
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	// Server application: check the client's stream, send our own.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ts.srv.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					fail(fmt.Errorf("server: header: %w", err))
					c.Close()
					return
				}
				idx := binary.BigEndian.Uint64(hdr[:])
				var inner sync.WaitGroup
				inner.Add(1)
				go func() {
					defer inner.Done()
					if err := writePattern(c, newPattern(idx, 's'), per); err != nil {
						fail(fmt.Errorf("server %d: write: %w", idx, err))
					}
				}()
				if err := verifyRead(c, newPattern(idx, 'c'), per); err != nil {
					fail(fmt.Errorf("server %d: read: %w", idx, err))
				} else if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					fail(fmt.Errorf("server %d: want EOF, got %d %v", idx, n, err))
				}
				inner.Wait()
				closeStart := time.Now()
				c.Close()
				if d := time.Since(closeStart); d > 10*time.Second {
					fail(fmt.Errorf("server %d (%s): close took %v", idx, c.SessionID(), d))
				}
			}()
		}
	}()

	done := make(chan struct{})
	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(20+rand.IntN(150)) * time.Millisecond):
			}
			p := ptcp
			if rand.IntN(2) == 0 {
				p = pws
			}
			if _, _, b1 := ptcp.Stats(); b1 == 0 {
				ptcp.BlackholeRandom(0.2) // make sure half-open transports are part of every run
			}
			if _, _, b2 := pws.Stats(); b2 == 0 {
				pws.BlackholeRandom(0.2)
			}
			switch rand.IntN(6) {
			case 0:
				p.KillAll()
			case 1, 2:
				p.BlackholeRandom(0.15)
			default:
				p.KillRandom(0.25)
			}
		}
	}()

	var resumes atomic.Int64
	var clients sync.WaitGroup
	for i := range sessions {
		clients.Add(1)
		go func() {
			defer clients.Done()
			url := "tcp://" + ptcp.Addr()
			if i%2 == 1 {
				url = "ws://" + pws.Addr() + "/chaos"
			}
			o := fastDial("")
			if i%3 == 0 {
				o.ServerKey = key.PublicString()
			}
			if i%4 < 2 {
				o.Suite = SuiteAESGCM
			}
			o.PingInterval, o.DeadTimeout, o.CloseTimeout = 150*time.Millisecond, 1500*time.Millisecond, 60*time.Second
			o.OnStateChange = func(s State) {
				if s == StateDetached {
					resumes.Add(1)
				}
			}
			var c *Conn
			var err error
			for attempt := 0; attempt < 50; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err = Dial(ctx, url, o)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
			}
			if err != nil {
				fail(fmt.Errorf("client %d: dial: %w", i, err))
				return
			}
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(i))
			if _, err := c.Write(hdr[:]); err != nil {
				fail(fmt.Errorf("client %d: header: %w", i, err))
			}
			var inner sync.WaitGroup
			inner.Add(1)
			go func() {
				defer inner.Done()
				if err := writePattern(c, newPattern(uint64(i), 'c'), per); err != nil {
					fail(fmt.Errorf("client %d: write: %w", i, err))
				}
			}()
			if err := verifyRead(c, newPattern(uint64(i), 's'), per); err != nil {
				fail(fmt.Errorf("client %d: read: %w", i, err))
			}
			inner.Wait()
			closeStart := time.Now()
			if err := c.Close(); err != nil {
				fail(fmt.Errorf("client %d: close: %w", i, err))
			}
			if d := time.Since(closeStart); d > 10*time.Second {
				fail(fmt.Errorf("client %d (%s): close took %v", i, c.SessionID(), d))
			}
			if err := c.Err(); err != nil && !errors.Is(err, errClosedForTest) && !isClosed(err) {
				fail(fmt.Errorf("client %d: session ended with %w", i, err))
			}
		}()
	}
	finished := make(chan struct{})
	go func() { clients.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(150 * time.Second):
		close(done)
		chaosWG.Wait()
		ts.srv.Close()
		<-finished
		t.Fatalf("chaos test did not finish in time")
	}
	close(done)
	chaosWG.Wait()
	if err := ts.srv.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	a1, k1, b1 := ptcp.Stats()
	a2, k2, b2 := pws.Stats()
	t.Logf("%d sessions, %d KiB per direction each, %d MiB verified; transports accepted %d, killed %d, blackholed %d; detaches seen by clients %d",
		sessions, per>>10, verified.Load()>>20, a1+a2, k1+k2, b1+b2, resumes.Load())
	if v := verified.Load(); v != int64(sessions*per*2) {
		t.Fatalf("verified %d bytes, want %d", v, sessions*per*2)
	}
	if k1+k2 == 0 || b1+b2 == 0 || resumes.Load() == 0 {
		t.Fatalf("no faults were injected")
	}
}

var errClosedForTest = errors.New("unused")
