package resume

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// CloseCode is a session close or refusal code (docs/protocol.md §7).
type CloseCode uint16

// Close and refusal codes.
const (
	CloseNormal              CloseCode = 1000
	CloseGoingAway           CloseCode = 1001
	CloseProtocolError       CloseCode = 1002
	CloseUnsupportedData     CloseCode = 1003
	ClosePolicy              CloseCode = 1008
	CloseTooBig              CloseCode = 1009
	CloseInternalError       CloseCode = 1011
	CloseUnknownSession      CloseCode = 4000
	CloseSessionExpired      CloseCode = 4001
	CloseProofFailed         CloseCode = 4002
	CloseTooFarBehind        CloseCode = 4003
	CloseUnsupportedVersion  CloseCode = 4004
	CloseUnsupportedSuite    CloseCode = 4005
	CloseTooManySessions     CloseCode = 4006
	CloseTooManyFromAddress  CloseCode = 4007
	CloseServerKeyMismatch   CloseCode = 4008
	CloseReplayedResume      CloseCode = 4009
	CloseUpstreamUnreachable CloseCode = 4010
	CloseUpstreamClosed      CloseCode = 4011
	CloseNotDualgate         CloseCode = 4012
	CloseHandshakeTimeout    CloseCode = 4013
	CloseSuperseded          CloseCode = 4014
	CloseTransportDead       CloseCode = 4015
)

var closeNames = map[CloseCode]string{
	CloseNormal: "normal", CloseGoingAway: "going away", CloseProtocolError: "protocol error",
	CloseUnsupportedData: "unsupported data", ClosePolicy: "policy", CloseTooBig: "too big",
	CloseInternalError: "internal error", CloseUnknownSession: "unknown session",
	CloseSessionExpired: "session expired", CloseProofFailed: "proof failed",
	CloseTooFarBehind: "too far behind", CloseUnsupportedVersion: "unsupported version",
	CloseUnsupportedSuite: "unsupported suite or pattern", CloseTooManySessions: "too many sessions",
	CloseTooManyFromAddress: "too many sessions from this address",
	CloseServerKeyMismatch:  "server key mismatch", CloseReplayedResume: "replayed resume",
	CloseUpstreamUnreachable: "upstream unreachable", CloseUpstreamClosed: "upstream closed",
	CloseNotDualgate: "not a dualgate client", CloseHandshakeTimeout: "handshake timeout",
	CloseSuperseded: "transport superseded", CloseTransportDead: "transport dead",
}

// String returns the protocol name of the code.
func (c CloseCode) String() string {
	if n, ok := closeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// final reports whether a refusal with this code ends a session (docs/protocol.md §4.3).
func (c CloseCode) final() bool {
	switch c {
	case CloseProtocolError, CloseTooBig, CloseUnknownSession, CloseSessionExpired,
		CloseProofFailed, CloseTooFarBehind, CloseUnsupportedVersion, CloseUnsupportedSuite,
		CloseServerKeyMismatch, CloseReplayedResume:
		return true
	}
	return false
}

// CloseError is the error of a session that ended with a close or refusal code
// other than a normal close, or of a refused handshake.
type CloseError struct {
	Code   CloseCode
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("resume: closed with %d (%s)", uint16(e.Code), e.Code)
	}
	return fmt.Sprintf("resume: closed with %d (%s): %s", uint16(e.Code), e.Code, e.Reason)
}

// CloseStatus returns the code of the *CloseError in err's chain, or 0 if there is none.
func CloseStatus(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

var (
	errShort   = errors.New("resume: message truncated")
	errLength  = errors.New("resume: message length mismatch")
	errUnknown = errors.New("resume: unknown message type")
	// ErrClosedSession is returned for I/O on a session closed locally; it
	// wraps net.ErrClosed.
	errTransportClosed = errors.New("resume: transport closed")
)

func protoErr(format string, args ...any) error {
	return &CloseError{Code: CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// errDeadline is returned when a Conn deadline passes; it is a net.Error
// whose Timeout() is true.
var errDeadline = os.ErrDeadlineExceeded

// errSessionDone ends a transport's read loop after a clean close.
var errSessionDone = errors.New("resume: session done")

// errWouldBlock: a pollTransport has no whole message buffered and nothing
// more to read now.
var errWouldBlock = errors.New("resume: nothing to read now")

// errTampered ends a transport whose message does not authenticate.
var timeZero time.Time

var errTampered = errors.New("resume: transport message does not authenticate")
