package sniff_test

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreExpirableLRU is the goroutine golang-lru/v2's expirable cache starts
// and never stops (one per IPCache).
var ignoreExpirableLRU = goleak.IgnoreAnyFunction("github.com/hashicorp/golang-lru/v2/expirable.NewLRU[...].func1")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, ignoreExpirableLRU) }
