package wsbridge_test

import (
	"io"
	"strings"
	"testing"

	"github.com/dualgate/dualgate/resume"
)

// BenchmarkBridgeResume measures a real resume session (client and gateway
// in this process, over loopback ws) bridged to a TCP echo upstream (byte
// stream) and to a WebSocket echo upstream (messages), 32 KiB messages.
// Allocations include the client's, the upstream echo's and the resume
// protocol's, not only the bridge's.
func BenchmarkBridgeResume(b *testing.B) {
	tcp := startTCPEcho(b)
	ws := startWSEcho(b)
	g := startGateway(b, []string{
		"/tcp=tcp://" + tcp,
		"/ws=ws" + strings.TrimPrefix(ws.URL, "http") + "/echo",
	}, nil, nil)
	for _, route := range []string{"/tcp", "/ws"} {
		b.Run(route[1:], func(b *testing.B) {
			ctx := testCtx(b)
			c, err := resume.Dial(ctx, g.url(false, route), g.dialOpts())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			const size = 32 << 10
			msg := make([]byte, size)
			rbuf := make([]byte, 0, size)
			errc := make(chan error, 1)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					if err := c.WriteMessage(ctx, resume.MessageBinary, msg); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			if route == "/tcp" {
				for range b.N {
					if _, err := io.ReadFull(c, rbuf[:size]); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				for range b.N {
					_, p, err := c.AppendMessage(ctx, rbuf[:0])
					if err != nil {
						b.Fatal(err)
					}
					if len(p) != size {
						b.Fatalf("echoed %d bytes, want %d", len(p), size)
					}
				}
			}
			b.StopTimer()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}
