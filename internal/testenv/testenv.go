package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under continuous integration (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// RequireBinary returns the absolute path of the named executable, looking in
// PATH and then in the extra candidate paths. If none is found the test fails
// with a message that says how to install it: missing real components are a
// failure, never a skip.
func RequireBinary(tb testing.TB, name string, candidates ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c
		}
	}
	tb.Fatalf("testenv: %s is not installed; run `make deps` (or `make test`, which installs it)", name)
	return ""
}

// Scale returns full when the race detector is off and reduced under -race,
// so that heavy tests keep their shape under the race detector and run at
// full size in the non-race pass.
func Scale(full, reduced int) int {
	if RaceEnabled {
		return reduced
	}
	return full
}
