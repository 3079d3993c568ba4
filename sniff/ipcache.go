package sniff

import (
	"net/netip"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Defaults of NewIPCache.
const (
	DefaultIPCacheSize = 65536
	DefaultIPCacheTTL  = 10 * time.Second
)

// IPCache remembers the client IPs that recently completed a TLS handshake,
// bounded both in size (least recently added entries are evicted first) and
// in time (entries expire after the TTL). IPv4-mapped IPv6 addresses and zones
// are normalised, so ::ffff:192.0.2.1 and 192.0.2.1 are the same entry.
//
// An IPCache is safe for concurrent use. The zero value is not usable; use
// NewIPCache. The underlying expirable LRU runs one background goroutine per
// cache for the lifetime of the process (golang-lru v2 offers no way to stop
// it), so create one cache per process and share it.
type IPCache struct {
	lru *expirable.LRU[netip.Addr, struct{}]
}

// NewIPCache returns a cache of at most size IPs, each remembered for ttl.
// A size or ttl of zero or less selects DefaultIPCacheSize or
// DefaultIPCacheTTL.
func NewIPCache(size int, ttl time.Duration) *IPCache {
	if size <= 0 {
		size = DefaultIPCacheSize
	}
	if ttl <= 0 {
		ttl = DefaultIPCacheTTL
	}
	return &IPCache{lru: expirable.NewLRU[netip.Addr, struct{}](size, nil, ttl)}
}

func normalise(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// Add records that ip completed a TLS handshake now. Invalid addresses are
// ignored.
func (c *IPCache) Add(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	c.lru.Add(normalise(ip), struct{}{})
}

// Contains reports whether ip completed a TLS handshake within the TTL.
// It does not refresh the entry.
func (c *IPCache) Contains(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	_, ok := c.lru.Peek(normalise(ip))
	return ok
}

// Len returns the number of entries, including expired ones not yet purged.
func (c *IPCache) Len() int { return c.lru.Len() }
