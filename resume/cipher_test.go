package resume

import (
	"io"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/rawio"
)

// TestQuietLinkShedsCiphers checks that both directions of an idle
// session's transport drop their AEAD state once only control frames pass
// (pings every 2 s, with quiet seconds between them), and that the session
// works as before afterwards, with states rebuilt from the kept keys and
// nonces.
func TestQuietLinkShedsCiphers(t *testing.T) {
	testQuietLinkSheds(t, 2*time.Second, "before the quiet")
}

// TestSilentLinkShedsCiphers is TestQuietLinkShedsCiphers without pings:
// after DATA both ways nothing passes, and the server's link sheds both
// directions once its reader has waited rawio.ParkAfter.
func TestSilentLinkShedsCiphers(t *testing.T) {
	testQuietLinkSheds(t, time.Minute, "before the quiet")
}

// TestBulkLinkShedsCiphers is TestSilentLinkShedsCiphers after a bulk
// burst, whose reader waits for the next message on its own goroutine
// (readAvailable) instead of a fresh one: that wait too must end in the
// quiet second's shedding and parking, and the link must then carry on.
func TestBulkLinkShedsCiphers(t *testing.T) {
	testQuietLinkSheds(t, time.Minute, strings.Repeat("bulk burst ", 4*bulkBurst/11))
}

func testQuietLinkSheds(t *testing.T, ping time.Duration, first string) {
	var shed sync.Map // *sheddingCipher → true
	testHookShed = func(c *sheddingCipher) { shed.Store(c, true) }
	t.Cleanup(func() { testHookShed = nil })

	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	so, do := fastOpts(k), fastDial("")
	so.PingInterval, do.PingInterval = ping, ping
	so.DeadTimeout, do.DeadTimeout = 10*ping, 10*ping
	ts := newTestServer(t, so)
	c, err := Dial(ctxT(t), ts.wsURL(), do)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := ts.acceptOne(t)
	defer sc.Close()
	roundTrip := func(msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(20 * time.Second))  //nolint:errcheck
		sc.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(sc, b); err != nil || string(b) != msg {
			t.Fatalf("server read %q, %v", b, err)
		}
		if _, err := sc.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
			t.Fatalf("client read %q, %v", b, err)
		}
	}
	if len(first) < bulkBurst {
		roundTrip(first)
	} else {
		// One way, so that nothing but the server's ACKs follows the
		// burst: the server's reader that took it waits itself, with
		// readAvailable (not parkRead) below waitRead on its stack, until
		// its quiet second ends.
		if _, err := c.Write([]byte(first)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(sc, make([]byte, len(first))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for start := time.Now(); !inlineWait.Match(buf[:runtime.Stack(buf, true)]); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > rawio.ParkAfter/2 {
				t.Fatalf("no reader waits on the goroutine that took the bulk burst:\n%s", buf[:runtime.Stack(buf, true)])
			}
		}
	}

	s := sc.s
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		l := s.link
		s.mu.Unlock()
		_, sent := shed.Load(&l.send)
		_, recv := shed.Load(&l.recv)
		if sent && recv {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the server link shed send=%v recv=%v", sent, recv)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 3 {
		roundTrip("after the quiet " + string(rune('a'+i)))
		time.Sleep(500 * time.Millisecond) // pings only: shed again
	}
}

// inlineWait matches a goroutine stack where readAvailable itself waits.
var inlineWait = regexp.MustCompile(`resume\.\(\*link\)\.waitRead\([^\n]*\n[^\n]*\n[^\n]*resume\.\(\*link\)\.readAvailable\(`)
