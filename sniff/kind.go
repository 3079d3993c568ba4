package sniff

// Kind is the protocol a connection speaks, as told by its first bytes.
// The zero value is KindUnknown.
type Kind uint8

// The kinds Classify returns.
const (
	// KindUnknown is the zero Kind; Classify never returns it with a nil error.
	KindUnknown Kind = iota
	// KindTLS is a TLS handshake record (0x16 0x03 ..).
	KindTLS
	// KindHTTP is a plain HTTP/1.x request line.
	KindHTTP
	// KindLegacy is the legacy raw protocol: first byte 0x00 (new session)
	// or 0xFF (reconnect).
	KindLegacy
	// KindStream is the resumable-stream byte-stream preamble "DGS1".
	KindStream

	numKinds
)

// NumKinds is one more than the largest Kind, for arrays indexed by Kind.
const NumKinds = int(numKinds)

var kindNames = [...]string{
	KindUnknown: "unknown",
	KindTLS:     "tls",
	KindHTTP:    "http",
	KindLegacy:  "legacy",
	KindStream:  "stream",
}

// String returns the lower-case name of k ("tls", "http", "legacy",
// "stream"), as used in metric labels and logs.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + itoa(int(k)) + ")"
}

// Kinds returns every classifiable kind, in order.
func Kinds() []Kind { return []Kind{KindTLS, KindHTTP, KindLegacy, KindStream} }

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
