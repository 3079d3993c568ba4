package sniff

import (
	"errors"
	"strconv"
)

// ErrNeedMore is returned by Classify while the prefix is too short to
// decide. Callers read more bytes and call Classify again.
var ErrNeedMore = errors.New("sniff: need more bytes")

// Reason says why a prefix was rejected. Reasons are stable, lower-case and
// short: they are metric label values.
type Reason string

// The reasons Classify rejects a prefix with.
const (
	// ReasonSSLv2 is an SSLv2-style (or SSLv2-compatible) ClientHello.
	ReasonSSLv2 Reason = "sslv2-hello"
	// ReasonH2CPreface is the HTTP/2 cleartext connection preface.
	ReasonH2CPreface Reason = "h2c-preface"
	// ReasonProxyHeader is a PROXY protocol header (v1 or v2) that was not
	// consumed by a trusted-proxy check first.
	ReasonProxyHeader Reason = "untrusted-proxy-header"
	// ReasonGarbage is anything that is none of the known kinds.
	ReasonGarbage Reason = "garbage"
)

// RejectError is the error Classify returns for a prefix that will never be
// one of the kinds. Like tls.RecordHeaderError it carries the raw bytes that
// led to the decision, so callers can log them or answer in kind.
type RejectError struct {
	// Reason is the short, stable reason.
	Reason Reason
	// Prefix holds the first PrefixLen bytes of the rejected prefix (at most
	// MaxPrefixLen).
	Prefix    [MaxPrefixLen]byte
	PrefixLen int
}

func newRejectError(reason Reason, prefix []byte) *RejectError {
	e := &RejectError{Reason: reason}
	e.PrefixLen = copy(e.Prefix[:], prefix)
	return e
}

// Bytes returns the raw rejected prefix.
func (e *RejectError) Bytes() []byte { return e.Prefix[:e.PrefixLen] }

func (e *RejectError) Error() string {
	return "sniff: rejected " + string(e.Reason) + " (prefix " + strconv.Quote(string(e.Bytes())) + ")"
}

// RejectReason returns the Reason of a *RejectError in err's chain, and
// false when there is none.
func RejectReason(err error) (Reason, bool) {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return "", false
}
