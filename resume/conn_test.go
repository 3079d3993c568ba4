package resume

import (
	"bytes"
	"io"
	"testing"
)

func TestEcho(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		name   string
		url    string
		pinned bool
		suite  Suite
	}{
		{"tcp/NN/chacha", ts.tcpURL(), false, SuiteChaChaPoly},
		{"tcp/NK/aes", ts.tcpURL(), true, SuiteAESGCM},
		{"ws/NN/aes", ts.wsURL(), false, SuiteAESGCM},
		{"ws/NK/chacha", ts.wsURL(), true, SuiteChaChaPoly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := fastDial("")
			if tc.pinned {
				o.ServerKey = ts.key.PublicString()
			}
			o.Suite = tc.suite
			ctx := ctxT(t)
			c, err := Dial(ctx, tc.url, o)
			if err != nil {
				t.Fatal(err)
			}
			sc := ts.acceptOne(t)
			if sc.SessionID() != c.SessionID() {
				t.Fatalf("session IDs %s and %s", sc.SessionID(), c.SessionID())
			}
			if err := c.WriteMessage(ctx, MessageText, []byte("héllo")); err != nil {
				t.Fatal(err)
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB > window
			go func() { c.WriteMessage(ctx, MessageBinary, big) }()
			typ, m, err := sc.ReadMessage(ctx)
			if err != nil || typ != MessageText || string(m) != "héllo" {
				t.Fatalf("got %v %q %v", typ, m, err)
			}
			typ, m, err = sc.ReadMessage(ctx)
			if err != nil || typ != MessageBinary || !bytes.Equal(m, big) {
				t.Fatalf("big message: %v %d %v", typ, len(m), err)
			}
			if _, err := sc.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			n, err := io.ReadFull(c, buf[:4])
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("read %q %v", buf[:n], err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := sc.Read(buf); err != io.EOF {
				t.Fatalf("server read after close: %v", err)
			}
			if err := sc.Close(); err == nil {
				t.Logf("server close: %v", err)
			}
			if st := c.State(); st != StateClosed {
				t.Fatalf("client state %v", st)
			}
		})
	}
}
