package proxytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dualgate/dualgate/internal/testenv"
)

// TestUser is the system account StartDante creates for Dante's username
// method. It has no home directory and no login shell.
const TestUser = "dgproxytest"

// ensureTestUser makes sure TestUser exists with the password stored in the
// state file, creating both on first use, and returns the credentials.
// Concurrent test processes serialise on a lock file, so they all end up
// with the same password.
func ensureTestUser(tb testing.TB) (name, password string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatalf("proxytest: Dante username authentication checks the system password database, so creating the test user %q needs root (the tests run as root in CI)", TestUser)
	}
	lockPath := filepath.Join(os.TempDir(), "dualgate-proxytest.lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatalf("proxytest: open %s: %v", lockPath, err)
	}
	defer lock.Close()
	// flock blocks; the holders only run useradd and chpasswd, which take
	// well under a second.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("proxytest: lock %s: %v", lockPath, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	statePath := filepath.Join(os.TempDir(), "dualgate-proxytest.password")
	password, err = readPassword(statePath)
	if err != nil {
		tb.Fatalf("proxytest: %v", err)
	}
	if password == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			tb.Fatalf("proxytest: random password: %v", err)
		}
		password = hex.EncodeToString(b[:])
	}

	if _, err := user.Lookup(TestUser); err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			tb.Fatalf("proxytest: look up user %s: %v", TestUser, err)
		}
		run(tb, nil, "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--comment", "dualgate proxy tests (internal/proxydial/proxytest)", TestUser)
	}
	// Setting the same password again is harmless and repairs a user whose
	// password was changed behind our back.
	run(tb, strings.NewReader(TestUser+":"+password+"\n"), "chpasswd")
	if err := os.WriteFile(statePath, []byte(password+"\n"), 0o600); err != nil {
		tb.Fatalf("proxytest: write %s: %v", statePath, err)
	}
	return TestUser, password
}

// readPassword returns the stored password, or "" if there is none yet.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	p := string(bytes.TrimSpace(b))
	if len(p) < 16 || strings.ContainsAny(p, ":\n") {
		return "", nil // unusable; make a new one
	}
	return p, nil
}

func run(tb testing.TB, stdin *strings.Reader, name string, args ...string) {
	tb.Helper()
	bin := testenv.RequireBinary(tb, name, "/usr/sbin/"+name, "/sbin/"+name)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("proxytest: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
