package main

import (
	"testing"

	"go.uber.org/goleak"
)

var ignoreExpirableLRU = goleak.IgnoreAnyFunction("github.com/hashicorp/golang-lru/v2/expirable.NewLRU[...].func1")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, ignoreExpirableLRU,
		// certmagic (ACME mode, TestReadyzWaitsForACME): one rate limiter per
		// ACME account in a package-level map, never stopped, and the lock
		// file refresher, which exits within 5 s once its lock file is gone.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}
