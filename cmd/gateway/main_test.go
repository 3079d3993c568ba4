package main

import (
	"testing"

	"go.uber.org/goleak"
)

var ignoreExpirableLRU = goleak.IgnoreAnyFunction("github.com/hashicorp/golang-lru/v2/expirable.NewLRU[...].func1")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, ignoreExpirableLRU) }
