package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"testing"

	"go.uber.org/goleak"
)

// TestMain lets the test binary act as dualbench itself when re-executed
// for the baseline child process, and otherwise runs the tests, removes the
// gateway binary the smoke tests built and checks for leaked goroutines.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	if gatewayBuild.dir != "" {
		os.RemoveAll(gatewayBuild.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// gcPercent returns the GC percent in effect.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

func TestGeneratorGC(t *testing.T) {
	before := gcPercent()
	t.Setenv("GOGC", "")
	got, restore := generatorGC()
	during := gcPercent()
	restore()
	if got != "400" || during != generatorGCPercent || gcPercent() != before {
		t.Fatalf("GOGC unset: reported %q, in effect %d, restored to %d (was %d)", got, during, gcPercent(), before)
	}

	t.Setenv("GOGC", "150") // as if the runtime had applied it at start-up
	got, restore = generatorGC()
	during = gcPercent()
	restore()
	if got != "150" || during != before {
		t.Fatalf("GOGC=150: reported %q, GC percent %d (was %d)", got, during, before)
	}
}
