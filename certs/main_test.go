package certs_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// certmagic keeps one rate limiter per ACME account in a
		// package-level map, each with a goroutine that is never stopped.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		// certmagic's file-storage lock refresher wakes every 5 s and
		// exits once its lock file is gone (unlocked or TempDir removed);
		// it is bounded but outlives Close by up to 5 s.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}
