package faultproxy

import (
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// Default values of the Options fields.
const (
	DefaultListenAddr   = "127.0.0.1:0"
	DefaultDialTimeout  = 10 * time.Second
	DefaultBufferSize   = 32 << 10
	DefaultWaitTimeout  = 30 * time.Second
	DefaultCloseTimeout = 15 * time.Second
)

// LinkInfo describes a new link to Options.Tap.
type LinkInfo struct {
	// ID numbers the links of a proxy from 1 in the order they were
	// accepted (connections whose dial failed use up a number too).
	ID uint64
	// Accepted is when the client connection was accepted, before the
	// target was dialled.
	Accepted time.Time
	// Client is the client's address, Target the target's.
	Client, Target net.Addr
}

// TapFunc observes the bytes a link relays: d is their direction and p the
// chunk about to be written to the other side (within the link's budget).
// Calls for one direction are sequential, in stream order; the two
// directions call concurrently. p must not be kept or modified after the
// call. Returning false stops the calls for that direction.
type TapFunc func(d Direction, p []byte) bool

// Options configures a Proxy. A nil *Options is the same as the zero value,
// which listens on DefaultListenAddr and forwards without faults. New copies
// the options; changing them afterwards has no effect.
type Options struct {
	// ListenAddr is the TCP address to listen on; default
	// DefaultListenAddr.
	ListenAddr string
	// DialTimeout bounds each dial of the target; default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// BufferSize is the size of each relay's read buffer, and so of the
	// largest chunk it forwards at once; default DefaultBufferSize.
	BufferSize int
	// RandomChunks makes every read take a random size between 1 and
	// BufferSize bytes, so peers see their stream split at arbitrary
	// points.
	RandomChunks bool
	// SocketBuffer, when positive, sets SO_RCVBUF and SO_SNDBUF of both
	// sides of every link, so that a silent link blocks its peers' writes
	// quickly.
	SocketBuffer int
	// Budget is the initial budget function (see Proxy.SetBudget); nil
	// means none.
	Budget func() Budget
	// Rand is the source of the proxy's random choices (chunk sizes,
	// StrikeRandom); the proxy serialises its use. Nil means a randomly
	// seeded source.
	Rand *rand.Rand
	// Tap, when set, is called for each new link before it relays
	// anything; the TapFunc it returns (nil for none) observes the link's
	// bytes. It is how a benchmark sees the first bytes a new transport
	// carries.
	Tap func(LinkInfo) TapFunc
	// WaitTimeout bounds WaitConns when its context has no deadline;
	// default DefaultWaitTimeout.
	WaitTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the proxy's goroutines
	// once every socket is closed (only a blocking Tap can make it wait);
	// default DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives debug records of faults and warnings about failed
	// accepts and dials; nil discards them.
	Logger *slog.Logger
}

// cloneWithDefaults returns a copy of o with every unset field at its
// default.
func (o *Options) cloneWithDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.BufferSize <= 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = DefaultWaitTimeout
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
