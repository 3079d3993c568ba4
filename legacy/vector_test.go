package legacy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rc4"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"
)

// The specification's test vector (issue 7, docs/legacy.md).
const (
	vecClientPriv     uint64 = 0x41A73AF1ACD90000
	vecServerPriv     uint64 = 0xB782DAC88ED90000
	vecClientPub      uint64 = 0xdf49574448e59d97
	vecServerPub      uint64 = 0x494d3957f0366d4b
	vecSecret         uint64 = 0xa69bdcd2956cdb5d
	vecClientWire            = "00979de548445749df"
	vecKey                   = "5ddb6c95d2dc9ba6"
	vecKeystream             = "0d1368be46630c3c7b6e4c94cd08ff68"
	vecIDWire                = "0c1368be46630c3c"
	vecChallengeMD5          = "bcafb0da09ed0933b0d6e9ffaeea9f9b"
	vecReconnect             = "ff" + "0100000000000000" + "6400000000000000" + "3400000000000000"
	vecReconnectMD5          = "5ac7ae25fac059928c1c23fccc2fcad1"
	vecChallengeBytes        = "0001020304050607"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func TestVectorPrimitives(t *testing.T) {
	if got := dhPublic(vecClientPriv); got != vecClientPub {
		t.Errorf("client public key = %#x, want %#x", got, vecClientPub)
	}
	if got := dhPublic(vecServerPriv); got != vecServerPub {
		t.Errorf("server public key = %#x, want %#x", got, vecServerPub)
	}
	if a, b := dhSecret(vecClientPriv, vecServerPub), dhSecret(vecServerPriv, vecClientPub); a != vecSecret || b != vecSecret {
		t.Errorf("secrets = %#x, %#x, want %#x", a, b, vecSecret)
	}
	if got := appendNewRequest(nil, vecClientPub); !bytes.Equal(got, unhex(t, vecClientWire)) {
		t.Errorf("client hello = %x, want %s", got, vecClientWire)
	}
	key := keyFromSecret(vecSecret)
	if !bytes.Equal(key[:], unhex(t, vecKey)) {
		t.Errorf("key = %x, want %s", key, vecKey)
	}
	ks := make([]byte, 16)
	rc, err := rc4.NewCipher(key[:])
	if err != nil {
		t.Fatal(err)
	}
	rc.XORKeyStream(ks, ks)
	if !bytes.Equal(ks, unhex(t, vecKeystream)) {
		t.Errorf("keystream = %x, want %s", ks, vecKeystream)
	}
	_, w := newCiphers(key)
	id := le64(1)
	w.XORKeyStream(id, id)
	if !bytes.Equal(id, unhex(t, vecIDWire)) {
		t.Errorf("encrypted id = %x, want %s", id, vecIDWire)
	}
	if p := proof(unhex(t, vecChallengeBytes), key); !bytes.Equal(p[:], unhex(t, vecChallengeMD5)) {
		t.Errorf("challenge proof = %x, want %s", p, vecChallengeMD5)
	}
	req := reconnectRequest{id: 1, writeCount: 100, readCount: 52}
	req.sign(key)
	b := req.marshal()
	if want := unhex(t, vecReconnect+vecReconnectMD5); !bytes.Equal(b[:], want) {
		t.Errorf("reconnect request = %x, want %x", b, want)
	}
	if got := powMod(dhG, 0); got != 1 {
		t.Errorf("g^0 = %d", got)
	}
}

// TestVectorWire drives a real server over loopback TCP with the vector's
// private key, ID and challenge, writing and checking every byte by hand:
// new session, 100 bytes up, 52 bytes down, a dropped transport, and the
// vector's reconnect request.
func TestVectorWire(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		t.Run(map[bool]string{true: "encrypted", false: "plain"}[encrypt], func(t *testing.T) {
			ts := startServer(t, &ServerOptions{Encrypt: encrypt}, nil)
			fixed := append(append(le64(vecServerPriv), le64(1)...), unhex(t, vecChallengeBytes)...)
			fixed = append(fixed, 8, 9, 10, 11, 12, 13, 14, 15) // reconnect challenge
			ts.setRand(io.MultiReader(bytes.NewReader(fixed), rand.Reader))
			key := keyFromSecret(vecSecret)
			cRead, cWrite := newCiphers(key)

			c1 := rawDial(t, ts.addr)
			mustWrite(t, c1, unhex(t, vecClientWire))
			resp := mustRead(t, c1, newResponseLen)
			want := append(append(le64(vecServerPub), unhex(t, vecIDWire)...), unhex(t, vecChallengeBytes)...)
			if !bytes.Equal(resp, want) {
				t.Fatalf("server response = %x, want %x", resp, want)
			}
			mustWrite(t, c1, unhex(t, vecChallengeMD5))
			sess := ts.accept(t)
			if sess.ID() != 1 {
				t.Fatalf("session id = %d, want 1", sess.ID())
			}
			encID := resp[8:16]
			cRead.XORKeyStream(encID, encID) // client consumes 8 keystream bytes

			up := bytes.Repeat([]byte("u"), 100)
			wire := append([]byte(nil), up...)
			if encrypt {
				cWrite.XORKeyStream(wire, wire)
			}
			mustWrite(t, c1, wire)
			if got := mustRead(t, sess, 100); !bytes.Equal(got, up) {
				t.Fatalf("server got %q", got)
			}
			down := bytes.Repeat([]byte("d"), 52)
			mustWrite(t, sess, down)
			got := mustRead(t, c1, 52)
			if encrypt {
				if bytes.Equal(got, down) {
					t.Fatal("data not encrypted")
				}
				cRead.XORKeyStream(got, got)
			}
			if !bytes.Equal(got, down) {
				t.Fatalf("client got %q", got)
			}
			_ = c1.Close()

			c2 := rawDial(t, ts.addr)
			mustWrite(t, c2, unhex(t, vecReconnect+vecReconnectMD5))
			rr := mustRead(t, c2, reconnectResponseLen)
			wantRR := append(append(le64(52), le64(100)...), 8, 9, 10, 11, 12, 13, 14, 15)
			if !bytes.Equal(rr, wantRR) {
				t.Fatalf("reconnect response = %x, want %x", rr, wantRR)
			}
			ans := proof(rr[16:], key)
			mustWrite(t, c2, ans[:])
			// Nothing to resend either way; the stream continues with the
			// RC4 states where they were.
			more := []byte("after the reconnect")
			wire = append([]byte(nil), more...)
			if encrypt {
				cWrite.XORKeyStream(wire, wire)
			}
			mustWrite(t, c2, wire)
			if got := mustRead(t, sess, len(more)); !bytes.Equal(got, more) {
				t.Fatalf("server got %q after reconnect", got)
			}
			mustWrite(t, sess, []byte("ok"))
			got = mustRead(t, c2, 2)
			if encrypt {
				cRead.XORKeyStream(got, got)
			}
			if string(got) != "ok" {
				t.Fatalf("client got %q after reconnect", got)
			}
		})
	}
}

// TestVectorClient checks the Go client against the vector: its hello, its
// proof and the ID it decrypts.
func TestVectorClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		hello := make([]byte, newRequestLen)
		if _, err := io.ReadFull(c, hello); err != nil {
			done <- err
			return
		}
		if !bytes.Equal(hello, unhex(t, vecClientWire)) {
			done <- errorf("client hello %x", hello)
			return
		}
		resp := append(append(le64(vecServerPub), unhex(t, vecIDWire)...), unhex(t, vecChallengeBytes)...)
		if _, err := c.Write(resp); err != nil {
			done <- err
			return
		}
		ans := make([]byte, proofLen)
		if _, err := io.ReadFull(c, ans); err != nil {
			done <- err
			return
		}
		if !bytes.Equal(ans, unhex(t, vecChallengeMD5)) {
			done <- errorf("client proof %x", ans)
			return
		}
		done <- nil
		_, _ = io.Copy(io.Discard, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := dialWith(ctx, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}, &DialOptions{ReconnectWait: time.Second}, bytes.NewReader(le64(vecClientPriv)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.ID() != 1 {
		t.Fatalf("client decrypted id %d, want 1", c.ID())
	}
}
