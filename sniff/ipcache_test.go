package sniff_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/dualgate/dualgate/sniff"
)

func TestIPCache(t *testing.T) {
	c := sniff.NewIPCache(2, time.Hour)
	v4 := netip.MustParseAddr("192.0.2.1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	zoned := netip.MustParseAddr("fe80::1%eth0")

	if c.Contains(v4) {
		t.Fatal("empty cache contains v4")
	}
	c.Add(mapped)
	if !c.Contains(v4) || !c.Contains(mapped) {
		t.Fatal("IPv4-mapped address not normalised")
	}
	c.Add(zoned)
	if !c.Contains(netip.MustParseAddr("fe80::1")) {
		t.Fatal("zone not stripped")
	}
	c.Add(v6) // evicts the oldest (v4): size bound
	if c.Contains(v4) || !c.Contains(v6) || c.Len() != 2 {
		t.Fatalf("size bound not kept: len %d", c.Len())
	}
	c.Add(netip.Addr{})
	if c.Contains(netip.Addr{}) || c.Len() != 2 {
		t.Fatal("invalid address stored")
	}
}

func TestIPCacheTTL(t *testing.T) {
	c := sniff.NewIPCache(0, 50*time.Millisecond)
	ip := netip.MustParseAddr("198.51.100.7")
	c.Add(ip)
	if !c.Contains(ip) {
		t.Fatal("fresh entry missing")
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Contains(ip) {
		if time.Now().After(deadline) {
			t.Fatal("entry did not expire")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
