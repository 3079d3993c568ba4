package sniff

// Specification constants.
const (
	recordTypeHandshake = 0x16 // TLS ContentType handshake (RFC 8446 §5.1)
	tlsMajor            = 0x03 // every TLS/SSLv3 record version starts with 3
	maxTLSMinor         = 0x04 // highest minor version we accept in a record header
	sslv2ClientHello    = 0x01 // SSLv2 msg_type CLIENT-HELLO
	legacyNewSession    = 0x00
	legacyReconnect     = 0xFF
)

// StreamPreamble is the byte-stream preamble of the resume protocol
// (docs/protocol.md §2).
const StreamPreamble = "DGS1"

// MaxPrefixLen is the most bytes Classify ever needs: given a prefix of at
// least this length it always returns a Kind or a *RejectError.
const MaxPrefixLen = 16

// candidate is a fixed byte string that decides a prefix once fully seen.
type candidate struct {
	text   string
	kind   Kind
	reason Reason // non-empty: reject
}

// candidates is prefix-free: no entry is a prefix of another, so at most one
// can ever match completely. Every text is at most MaxPrefixLen bytes.
var candidates = [...]candidate{
	// RFC 9110 §9 methods, PATCH (RFC 5789) and the WebDAV methods (RFC 4918,
	// RFC 3253, RFC 5323), each followed by the request-line SP.
	{text: "GET ", kind: KindHTTP},
	{text: "HEAD ", kind: KindHTTP},
	{text: "POST ", kind: KindHTTP},
	{text: "PUT ", kind: KindHTTP},
	{text: "DELETE ", kind: KindHTTP},
	{text: "CONNECT ", kind: KindHTTP},
	{text: "OPTIONS ", kind: KindHTTP},
	{text: "TRACE ", kind: KindHTTP},
	{text: "PATCH ", kind: KindHTTP},
	{text: "PROPFIND ", kind: KindHTTP},
	{text: "PROPPATCH ", kind: KindHTTP},
	{text: "MKCOL ", kind: KindHTTP},
	{text: "COPY ", kind: KindHTTP},
	{text: "MOVE ", kind: KindHTTP},
	{text: "LOCK ", kind: KindHTTP},
	{text: "UNLOCK ", kind: KindHTTP},
	{text: "SEARCH ", kind: KindHTTP},
	{text: "REPORT ", kind: KindHTTP},
	{text: "MKCALENDAR ", kind: KindHTTP},
	{text: "QUERY ", kind: KindHTTP},
	{text: StreamPreamble, kind: KindStream},
	// The HTTP/2 connection preface (RFC 9113 §3.4): h2c is not served.
	{text: "PRI * HTTP/2.0", reason: ReasonH2CPreface},
	// PROXY protocol v1 and v2 signatures.
	{text: "PROXY ", reason: ReasonProxyHeader},
	{text: "\r\n\r\n\x00\r\nQUIT\n", reason: ReasonProxyHeader},
}

// Classify reports which Kind the connection whose first bytes are prefix
// speaks. It returns ErrNeedMore while undecided and a *RejectError for a
// prefix that can never be a known kind. A decision made on a prefix never
// changes when bytes are appended, and any prefix of MaxPrefixLen or more
// bytes is decided.
//
// Classify is pure and safe for concurrent use; it does not allocate except
// to build a *RejectError.
func Classify(prefix []byte) (Kind, error) {
	if len(prefix) == 0 {
		return KindUnknown, ErrNeedMore
	}
	switch b0 := prefix[0]; {
	case b0 == recordTypeHandshake:
		if len(prefix) < 3 {
			if len(prefix) == 2 && prefix[1] != tlsMajor {
				return KindUnknown, newRejectError(ReasonGarbage, prefix)
			}
			return KindUnknown, ErrNeedMore
		}
		if prefix[1] != tlsMajor || prefix[2] > maxTLSMinor {
			return KindUnknown, newRejectError(ReasonGarbage, prefix)
		}
		return KindTLS, nil
	case b0 == legacyNewSession || b0 == legacyReconnect:
		return KindLegacy, nil
	case b0&0x80 != 0:
		// An SSLv2 record has a two-byte header with the high bit set,
		// then msg_type (RFC 6101 appendix E.1).
		if len(prefix) < 3 {
			return KindUnknown, ErrNeedMore
		}
		if prefix[2] == sslv2ClientHello {
			return KindUnknown, newRejectError(ReasonSSLv2, prefix)
		}
		return KindUnknown, newRejectError(ReasonGarbage, prefix)
	}
	return matchCandidates(prefix)
}

func matchCandidates(prefix []byte) (Kind, error) {
	partial := false
	for i := range candidates {
		c := &candidates[i]
		if c.text[0] != prefix[0] { // cheap first filter: most entries differ here
			continue
		}
		n := min(len(prefix), len(c.text))
		if string(prefix[:n]) != c.text[:n] {
			continue
		}
		if n < len(c.text) {
			partial = true
			continue
		}
		if c.reason != "" {
			return KindUnknown, newRejectError(c.reason, prefix)
		}
		return c.kind, nil
	}
	if partial {
		return KindUnknown, ErrNeedMore
	}
	return KindUnknown, newRejectError(ReasonGarbage, prefix)
}
