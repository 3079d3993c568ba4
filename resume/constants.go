package resume

import "time"

// Specification constants (docs/protocol.md).
const (
	// ProtocolVersion is the protocol version this package speaks.
	ProtocolVersion = 1
	// Subprotocol is the WebSocket subprotocol of the protocol.
	Subprotocol = "dualgate.v1"
	// StreamPreamble starts every byte-stream transport (client to server).
	StreamPreamble = "DGS1"

	maxMessageLen      = 65535 // largest protocol message (Noise limit)
	tagLen             = 16    // AEAD tag
	dhLen              = 32    // X25519 public key
	sessionIDLen       = 16
	helloHeaderLen     = 5 // type, version, suite, pattern, flags
	helloNewPayload    = 4 // u32 window
	helloResumePayload = 12
	serverHelloPayload = 32 // id, u64 offset, u32 window, u32 ttl (+ u8 frame mode after PLAIN_IN_TLS)
	dataHeaderLen      = 18 // type, flags, u64 offset, u64 ack
	maxDataPayload     = maxMessageLen - tagLen - dataHeaderLen
	ctrlFrameLen       = 9
	closeHeaderLen     = 11
	maxReasonLen       = 123
	resumeSecretLen    = 32

	msgClientHello = 0x01
	msgServerHello = 0x02
	msgRefuse      = 0x03

	frameConfirm = 0x10
	frameData    = 0x11
	frameAck     = 0x12
	framePing    = 0x13
	framePong    = 0x14
	frameClose   = 0x15

	flagResume     = 0x01
	flagPlainInTLS = 0x02 // docs/protocol.md §5.7
	flagFIN        = 0x01
	flagText       = 0x02

	// MinWindow and MaxWindow bound a receive window.
	MinWindow = 16 << 10
	MaxWindow = 16 << 20
)

const prologuePrefix = "dualgate/1"
const resumeInfo = "dualgate/1 resume"

// Implementation constants (defaults of the option fields).
const (
	DefaultWindow           = 256 << 10
	DefaultPingInterval     = 10 * time.Second
	DefaultDeadTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultDetachedTTL      = 2 * time.Minute
	DefaultMaxSessions      = 100000
	DefaultMaxSessionsPerIP = 256
	DefaultMaxMessageSize   = 16 << 20
	DefaultCloseTimeout     = 5 * time.Second

	ackDelay   = 20 * time.Millisecond
	blockSize  = 16 << 10  // pooled buffer block of the send and receive queues
	frameBurst = 8         // frames sealed per flusher pass, at most
	flushBytes = 128 << 10 // plaintext collected per flusher pass, about
)

// Suite is the Noise cipher suite proposed by the client (docs/protocol.md §3).
type Suite uint8

// Suites.
const (
	SuiteChaChaPoly Suite = 1 // Noise 25519_ChaChaPoly_SHA256
	SuiteAESGCM     Suite = 2 // Noise 25519_AESGCM_SHA256
)

// String returns the Noise name of the suite.
func (s Suite) String() string {
	switch s {
	case SuiteChaChaPoly:
		return "25519_ChaChaPoly_SHA256"
	case SuiteAESGCM:
		return "25519_AESGCM_SHA256"
	}
	return "unknown"
}

// Pattern is the Noise handshake pattern (docs/protocol.md §3).
type Pattern uint8

// Patterns.
const (
	PatternNN Pattern = 1 // anonymous
	PatternNK Pattern = 2 // the server's static key is pinned by the client
)

// String returns the Noise name of the pattern of a first handshake.
func (p Pattern) String() string {
	switch p {
	case PatternNN:
		return "NN"
	case PatternNK:
		return "NK"
	}
	return "unknown"
}
