package legacytest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// Stream returns the deterministic byte stream for seed, so that a sender
// and a verifier can agree on content without keeping it.
func Stream(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range s {
		s[i] = byte(seed >> (8 * (i % 8)))
	}
	s[31] ^= 0x5a
	return rand.NewChaCha8(s)
}

// EchoExchange writes total bytes of Stream(seed) to c, whose far end
// echoes everything back, and verifies the echo byte by byte. At most
// window bytes stay unanswered: that application-level flow control keeps
// the data in flight within a reconnecting protocol's resend buffer. It
// returns the first mismatch or I/O error; it closes c only on a write
// error (to stop its reader).
func EchoExchange(c net.Conn, seed uint64, total, window int) error {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	echoed, failed := 0, false
	fail := func() {
		mu.Lock()
		failed = true
		cond.Broadcast()
		mu.Unlock()
	}
	errc := make(chan error, 1)
	go func() {
		want := Stream(seed)
		buf := make([]byte, 64<<10)
		exp := make([]byte, len(buf))
		got := 0
		for got < total {
			n, err := c.Read(buf[:min(len(buf), total-got)])
			if n > 0 {
				_, _ = want.Read(exp[:n])
				if i := mismatch(buf[:n], exp[:n]); i >= 0 {
					fail()
					errc <- fmt.Errorf("legacytest: echo differs at byte %d", got+i)
					return
				}
				got += n
				mu.Lock()
				echoed = got
				cond.Broadcast()
				mu.Unlock()
			}
			if err != nil {
				fail()
				errc <- fmt.Errorf("legacytest: read after %d bytes: %w", got, err)
				return
			}
		}
		errc <- nil
	}()
	src := Stream(seed)
	buf := make([]byte, 16<<10)
	for sent := 0; sent < total; {
		n := min(len(buf), total-sent)
		mu.Lock()
		for sent+n-echoed > window && !failed {
			cond.Wait()
		}
		stop := failed
		mu.Unlock()
		if stop {
			break
		}
		_, _ = src.Read(buf[:n])
		if _, err := c.Write(buf[:n]); err != nil {
			_ = c.Close()
			<-errc
			return fmt.Errorf("legacytest: write after %d bytes: %w", sent, err)
		}
		sent += n
	}
	return <-errc
}

// mismatch returns the index of the first differing byte, or -1.
func mismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
