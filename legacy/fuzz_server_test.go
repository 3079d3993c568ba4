package legacy

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// FuzzServeConn feeds arbitrary bytes to a real Server over an in-memory
// pipe, through both handshake paths: whatever arrives, ServeConn must
// return (no panic, no hang past the handshake deadline) and no session
// may appear, since a proof cannot be guessed.
func FuzzServeConn(f *testing.F) {
	f.Add([]byte{0x00, 0x97, 0x9d, 0xe5, 0x48, 0x44, 0x57, 0x49, 0xdf, 0xbc, 0xaf, 0xb0, 0xda})
	f.Add([]byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(append([]byte{0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0x64, 0, 0, 0, 0, 0, 0, 0, 0x34}, make([]byte, 23)...))
	f.Add([]byte{0x16, 0x03, 0x01})
	f.Add([]byte{})
	srv, err := NewServer(&ServerOptions{HandshakeTimeout: 2 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	defer srv.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _ = client.Write(in)
			_ = client.Close() // end of input: the server sees EOF
		}()
		go func() {
			defer wg.Done()
			_, _ = io.Copy(io.Discard, client)
		}()
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), server, Info{}) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("ServeConn accepted %x", in)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("ServeConn hung on %x", in)
		}
		_ = client.Close()
		wg.Wait()
		if n := srv.Sessions(); n != 0 {
			t.Fatalf("%d sessions from %x", n, in)
		}
	})
}
