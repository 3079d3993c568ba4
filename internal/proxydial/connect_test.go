package proxydial

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestReadConnectResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		code    int
		reason  string
		header  [][2]string
		rest    string
		wantErr string
	}{
		{name: "minimal", in: "HTTP/1.1 200 Connection established\r\n\r\n", code: 200, reason: "Connection established"},
		{name: "no reason", in: "HTTP/1.0 200\r\n\r\n", code: 200},
		{name: "empty reason", in: "HTTP/1.1 204 \r\n\r\n", code: 204},
		{name: "bare LF", in: "HTTP/1.1 200 OK\n\n", code: 200, reason: "OK"},
		{name: "headers", in: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length:0\r\n\r\n",
			code: 407, reason: "Proxy Authentication Required",
			header: [][2]string{{"Proxy-Authenticate", `Basic realm="x"`}, {"Content-Length", "0"}}},
		{name: "tunnel bytes kept", in: "HTTP/1.1 200 OK\r\n\r\nSSH-2.0-x\r\n", code: 200, reason: "OK", rest: "SSH-2.0-x\r\n"},
		{name: "empty", in: "", wantErr: "unexpected EOF"},
		{name: "http/2", in: "HTTP/2 200\r\n\r\n", wantErr: "bad status line"},
		{name: "lower case", in: "http/1.1 200 OK\r\n\r\n", wantErr: "bad status line"},
		{name: "short code", in: "HTTP/1.1 20 OK\r\n\r\n", wantErr: "bad status"},
		{name: "letters in code", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: "bad status code"},
		{name: "code below 100", in: "HTTP/1.1 099 OK\r\n\r\n", wantErr: "bad status code"},
		{name: "no space after code", in: "HTTP/1.1 200OK\r\n\r\n", wantErr: "bad status line"},
		{name: "control in reason", in: "HTTP/1.1 200 O\x00K\r\n\r\n", wantErr: "control character"},
		{name: "folding", in: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", wantErr: "folding"},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nGarbage\r\n\r\n", wantErr: "bad header line"},
		{name: "space in name", in: "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", wantErr: "bad header name"},
		{name: "empty name", in: "HTTP/1.1 200 OK\r\n: x\r\n\r\n", wantErr: "bad header line"},
		{name: "control in value", in: "HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n", wantErr: "control character"},
		{name: "no end", in: "HTTP/1.1 200 OK\r\nA: b\r\n", wantErr: "unexpected EOF"},
		{name: "TLS record", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			resp, err := readConnectResponse(r, DefaultMaxConnectResponseBytes)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.statusCode != tt.code || resp.reason != tt.reason || !reflect.DeepEqual(resp.header, tt.header) {
				t.Fatalf("got %+v, want %d %q %q", resp, tt.code, tt.reason, tt.header)
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tt.rest {
				t.Fatalf("bytes after the header = %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestReadConnectResponseLimit(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("a", 100) + "\r\n\r\n"
	if _, err := readConnectResponse(bufio.NewReader(strings.NewReader(in)), len(in)); err != nil {
		t.Fatalf("header of exactly the limit: %v", err)
	}
	_, err := readConnectResponse(bufio.NewReader(strings.NewReader(in)), len(in)-1)
	if !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("one byte over the limit: err = %v", err)
	}
	// An endless header line from a hostile proxy stops at the limit.
	endless := io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\nX: "), neverEnding('a'))
	if _, err := readConnectResponse(bufio.NewReader(endless), 1<<10); !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("endless header: err = %v", err)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestReadConnectResponseTruncated checks that every strict prefix of a valid
// response is rejected rather than accepted or left hanging.
func TestReadConnectResponseTruncated(t *testing.T) {
	full := "HTTP/1.1 200 Connection established\r\nVia: 1.1 proxy\r\nX-A: b\r\n\r\n"
	for n := 0; n < len(full); n++ {
		_, err := readConnectResponse(bufio.NewReader(strings.NewReader(full[:n])), DefaultMaxConnectResponseBytes)
		if err == nil {
			t.Fatalf("prefix of %d bytes accepted: %q", n, full[:n])
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errMalformed) {
			t.Fatalf("prefix %q: unexpected error %v", full[:n], err)
		}
	}
}

// marshalConnectResponse writes resp the way a proxy would.
func marshalConnectResponse(resp connectResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.%d %03d", resp.minor, resp.statusCode)
	if resp.reason != "" {
		b.WriteString(" " + resp.reason)
	}
	b.WriteString("\r\n")
	for _, h := range resp.header {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestReadConnectResponseRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const tokenChars = "abcXYZ019!#$%&'*+-.^_`|~"
	const textChars = "abc XYZ 0-9 \t\"(),/:;<=>?@[]{}\x80\xff"
	str := func(alphabet string, min, max int) string {
		b := make([]byte, min+rng.IntN(max-min+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := 0; i < 10000; i++ {
		want := connectResponse{minor: rng.IntN(2), statusCode: 100 + rng.IntN(900)}
		want.reason = str(textChars, 0, 30)
		for range rng.IntN(5) {
			want.header = append(want.header, [2]string{str(tokenChars, 1, 12), strings.Trim(str(textChars, 0, 40), " \t")})
		}
		wire := marshalConnectResponse(want)
		got, err := readConnectResponse(bufio.NewReader(strings.NewReader(wire+"tail")), DefaultMaxConnectResponseBytes)
		if err != nil {
			t.Fatalf("%q: %v", wire, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", wire, got, want)
		}
	}
}

func FuzzReadConnectResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.0 200\n\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nearly tunnel bytes",
		"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"\x16\x03\x01\x00\x05hello",
		"",
	} {
		f.Add([]byte(s), uint16(256))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		r := bufio.NewReader(bytes.NewReader(data))
		resp, err := readConnectResponse(r, int(limit))
		rest, _ := io.ReadAll(r)
		if consumed := len(data) - len(rest); consumed > int(limit) {
			t.Fatalf("read %d bytes with a limit of %d", consumed, limit)
		}
		if err != nil {
			if !errors.Is(err, errMalformed) && !errors.Is(err, errHeaderTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if resp.statusCode < 100 || resp.statusCode > 999 {
			t.Fatalf("status code %d", resp.statusCode)
		}
		// What was accepted re-encodes to something that parses the same.
		again, err := readConnectResponse(bufio.NewReader(strings.NewReader(marshalConnectResponse(resp))), 1<<20)
		if err != nil {
			t.Fatalf("re-encoded %+v does not parse: %v", resp, err)
		}
		if !reflect.DeepEqual(again, resp) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, resp)
		}
	})
}

func BenchmarkReadConnectResponse(b *testing.B) {
	in := []byte("HTTP/1.1 200 Connection established\r\nVia: 1.1 proxy.example\r\nDate: Mon, 23 Nov 2026 12:00:00 GMT\r\n\r\n")
	rd := bytes.NewReader(in)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rd.Reset(in)
		br.Reset(rd)
		if _, err := readConnectResponse(br, DefaultMaxConnectResponseBytes); err != nil {
			b.Fatal(err)
		}
	}
}
