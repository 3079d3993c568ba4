package sniff_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dualgate/dualgate/sniff"
)

var classifyTests = []struct {
	name   string
	in     string
	kind   sniff.Kind
	reason sniff.Reason // non-empty: want a *RejectError
	more   bool         // want ErrNeedMore
}{
	{name: "empty", in: "", more: true},
	{name: "tls 1.0 record", in: "\x16\x03\x01\x02\x00\x01", kind: sniff.KindTLS},
	{name: "tls 1.2 record", in: "\x16\x03\x03", kind: sniff.KindTLS},
	{name: "tls one byte", in: "\x16", more: true},
	{name: "tls two bytes", in: "\x16\x03", more: true},
	{name: "tls bad major", in: "\x16\x02", reason: sniff.ReasonGarbage},
	{name: "tls bad minor", in: "\x16\x03\x09", reason: sniff.ReasonGarbage},
	{name: "legacy new", in: "\x00", kind: sniff.KindLegacy},
	{name: "legacy reconnect", in: "\xff\x01\x02", kind: sniff.KindLegacy},
	{name: "sslv2 hello", in: "\x80\x2e\x01\x00\x02", reason: sniff.ReasonSSLv2},
	{name: "sslv2 short", in: "\x80\x2e", more: true},
	{name: "high bit not hello", in: "\x85\x00\x07", reason: sniff.ReasonGarbage},
	{name: "GET", in: "GET / HTTP/1.1\r\n", kind: sniff.KindHTTP},
	{name: "GET partial", in: "GE", more: true},
	{name: "GET no space", in: "GET", more: true},
	{name: "HEAD", in: "HEAD /", kind: sniff.KindHTTP},
	{name: "POST", in: "POST /x", kind: sniff.KindHTTP},
	{name: "PUT", in: "PUT /", kind: sniff.KindHTTP},
	{name: "DELETE", in: "DELETE /", kind: sniff.KindHTTP},
	{name: "CONNECT", in: "CONNECT a:1 HTTP/1.1", kind: sniff.KindHTTP},
	{name: "OPTIONS", in: "OPTIONS * HTTP/1.1", kind: sniff.KindHTTP},
	{name: "TRACE", in: "TRACE /", kind: sniff.KindHTTP},
	{name: "PATCH", in: "PATCH /", kind: sniff.KindHTTP},
	{name: "PROPFIND", in: "PROPFIND /", kind: sniff.KindHTTP},
	{name: "PROPPATCH", in: "PROPPATCH /", kind: sniff.KindHTTP},
	{name: "D undecided", in: "D", more: true},
	{name: "stream preamble", in: "DGS1\x00\x10", kind: sniff.KindStream},
	{name: "stream partial", in: "DGS", more: true},
	{name: "stream wrong version", in: "DGS2", reason: sniff.ReasonGarbage},
	{name: "h2c preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", reason: sniff.ReasonH2CPreface},
	{name: "h2c partial", in: "PRI * HTTP/2", more: true},
	{name: "PRI other target", in: "PRI / HTTP/1.1", reason: sniff.ReasonGarbage},
	{name: "proxy v1", in: "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", reason: sniff.ReasonProxyHeader},
	{name: "proxy v1 partial", in: "PROX", more: true},
	{name: "proxy v2", in: "\r\n\r\n\x00\r\nQUIT\n\x21\x11", reason: sniff.ReasonProxyHeader},
	{name: "proxy v2 partial", in: "\r\n\r\n\x00", more: true},
	{name: "lower-case get", in: "get / HTTP/1.1", reason: sniff.ReasonGarbage},
	{name: "ssh banner", in: "SSH-2.0-OpenSSH_9.6\r\n", reason: sniff.ReasonGarbage},
	{name: "text", in: "hello", reason: sniff.ReasonGarbage},
	{name: "crlf", in: "\r\n", more: true},
	{name: "lf", in: "\n", reason: sniff.ReasonGarbage},
}

func TestClassify(t *testing.T) {
	for _, tt := range classifyTests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := sniff.Classify([]byte(tt.in))
			switch {
			case tt.more:
				if !errors.Is(err, sniff.ErrNeedMore) {
					t.Fatalf("Classify(%q) = %v, %v; want ErrNeedMore", tt.in, kind, err)
				}
			case tt.reason != "":
				var re *sniff.RejectError
				if !errors.As(err, &re) || re.Reason != tt.reason {
					t.Fatalf("Classify(%q) = %v, %v; want rejection %q", tt.in, kind, err, tt.reason)
				}
				if want := tt.in[:min(len(tt.in), sniff.MaxPrefixLen)]; string(re.Bytes()) != want {
					t.Fatalf("RejectError.Bytes() = %q, want %q", re.Bytes(), want)
				}
				if r, ok := sniff.RejectReason(err); !ok || r != tt.reason {
					t.Fatalf("RejectReason = %q, %v", r, ok)
				}
			default:
				if err != nil || kind != tt.kind {
					t.Fatalf("Classify(%q) = %v, %v; want %v", tt.in, kind, err, tt.kind)
				}
			}
		})
	}
}

// checkPrefixes verifies the decision invariants on every prefix of in: an
// undecided prefix is shorter than MaxPrefixLen, and once a prefix decides,
// every longer prefix decides the same way (truncation never misclassifies).
func checkPrefixes(t testing.TB, in []byte) {
	t.Helper()
	var (
		decided bool
		dKind   sniff.Kind
		dReason sniff.Reason
	)
	for i := 0; i <= len(in); i++ {
		kind, err := sniff.Classify(in[:i])
		reason, rejected := sniff.RejectReason(err)
		switch {
		case errors.Is(err, sniff.ErrNeedMore):
			if decided {
				t.Fatalf("Classify(%q) undecided after %q decided", in[:i], in[:i-1])
			}
			if i >= sniff.MaxPrefixLen {
				t.Fatalf("Classify(%q) undecided at %d bytes", in[:i], i)
			}
			continue
		case err == nil:
			if kind == sniff.KindUnknown || kind.String() == "unknown" {
				t.Fatalf("Classify(%q) = unknown kind without error", in[:i])
			}
		case !rejected:
			t.Fatalf("Classify(%q): unexpected error type %T %v", in[:i], err, err)
		}
		if decided && (kind != dKind || reason != dReason) {
			t.Fatalf("Classify(%q) = %v/%q, shorter prefix said %v/%q", in[:i], kind, reason, dKind, dReason)
		}
		decided, dKind, dReason = true, kind, reason
	}
}

func TestClassifyTruncated(t *testing.T) {
	for _, tt := range classifyTests {
		checkPrefixes(t, []byte(tt.in))
	}
	// Every strict prefix of a decided input is undecided or the same
	// decision; never a different kind.
	checkPrefixes(t, clientHello(t, tls.VersionTLS13))
}

// TestClassifyRoundTrip builds every kind's real opening bytes and checks
// they classify back to that kind at every length from their decision on.
func TestClassifyRoundTrip(t *testing.T) {
	inputs := map[sniff.Kind][][]byte{
		sniff.KindTLS: {clientHello(t, tls.VersionTLS12), clientHello(t, tls.VersionTLS13)},
		sniff.KindHTTP: {[]byte("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"),
			[]byte("POST /a HTTP/1.0\r\n\r\n"), []byte("OPTIONS * HTTP/1.1\r\n\r\n")},
		sniff.KindLegacy: {{0x00, 1, 2, 3}, {0xff, 9, 9}},
		sniff.KindStream: {[]byte("DGS1\x00\x20rest")},
	}
	for want, list := range inputs {
		for _, in := range list {
			kind, err := sniff.Classify(in)
			if err != nil || kind != want {
				t.Fatalf("Classify(%q) = %v, %v; want %v", in[:min(len(in), 20)], kind, err, want)
			}
			if want.String() == "" {
				t.Fatal("empty kind name")
			}
			checkPrefixes(t, in)
		}
	}
}

func TestKindString(t *testing.T) {
	want := map[sniff.Kind]string{sniff.KindTLS: "tls", sniff.KindHTTP: "http", sniff.KindLegacy: "legacy",
		sniff.KindStream: "stream", sniff.KindUnknown: "unknown", sniff.Kind(200): "kind(200)"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), k.String(), s)
		}
	}
	if len(sniff.Kinds()) != sniff.NumKinds-1 {
		t.Errorf("Kinds() = %v", sniff.Kinds())
	}
}

func TestClassifyAllocs(t *testing.T) {
	in := clientHello(t, tls.VersionTLS13)
	http := []byte("GET / HTTP/1.1\r\n")
	if n := testing.AllocsPerRun(100, func() {
		_, _ = sniff.Classify(in)
		_, _ = sniff.Classify(http)
		_, _ = sniff.Classify(http[:2])
	}); n != 0 {
		t.Fatalf("Classify allocates %v times per run", n)
	}
}

// clientHello records the first bytes a real crypto/tls client writes.
func clientHello(tb testing.TB, version uint16) []byte {
	tb.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		defer c.Close()
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", MinVersion: version, MaxVersion: version})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		_ = tc.Handshake()
	}()
	var buf bytes.Buffer
	b := make([]byte, 4096)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	for buf.Len() < 5 || buf.Len() < 5+int(buf.Bytes()[3])<<8|int(buf.Bytes()[4]) {
		n, err := s.Read(b)
		buf.Write(b[:n])
		if err != nil {
			tb.Fatalf("reading ClientHello: %v", err)
		}
	}
	return buf.Bytes()
}
