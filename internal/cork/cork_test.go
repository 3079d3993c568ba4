package cork

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
)

// countingConn records each Write that reaches the socket.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestCorkedConnGathersABurst(t *testing.T) {
	under := &countingConn{}
	c := New(under)
	if _, err := c.Write([]byte("handshake")); err != nil || len(under.writes) != 1 {
		t.Fatalf("uncorked write: %v, %d writes", err, len(under.writes))
	}
	c.Cork()
	for _, p := range []string{"record1", "record2", "record3"} {
		if n, err := c.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("corked write: %d %v", n, err)
		}
	}
	if len(under.writes) != 1 {
		t.Fatalf("%d writes reached the socket while corked", len(under.writes)-1)
	}
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || !bytes.Equal(under.writes[1], []byte("record1record2record3")) {
		t.Fatalf("writes %q, want the burst as one", under.writes)
	}
	if _, err := c.Write([]byte("alert")); err != nil || len(under.writes) != 3 {
		t.Fatalf("after uncork: %v, %d writes", err, len(under.writes))
	}
}

func TestOfFindsTheConnUnderTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := New(a)
	tc := tls.Client(c, &tls.Config{})
	if Of(tc) != c {
		t.Fatal("Of does not find the Conn under a *tls.Conn")
	}
	if Of(a) != nil || Of(tls.Client(a, &tls.Config{})) != nil {
		t.Fatal("Of finds a Conn where there is none")
	}
}
