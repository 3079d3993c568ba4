package certs_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/testenv"
)

// TestDevCAChromiumSPKIFlag loads https://localhost:<port>/ in headless
// Chromium with the SPKI hash from the start-up banner and checks the page
// arrives; without the flag the same page must not load (the dev CA is not
// in this fresh profile's trust store).
func TestDevCAChromiumSPKIFlag(t *testing.T) {
	bin := testenv.RequireBinary(t, "chromium", "/usr/bin/chromium")
	m, _ := newDev(t, t.TempDir(), nil, 0)
	log, _ := newTestLogger(t)
	p := listenOnePort(t)
	p.serve(m.TLSConfig(), m.HTTPChallengeHandler, log)
	url := "https://localhost:" + strconv.Itoa(p.port()) + "/"

	load := func(extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check", "--disable-features=Translate,OptimizationHints,MediaRouter",
			"--user-data-dir=" + t.TempDir()}, extra...)
		start := time.Now()
		defer func() { t.Logf("chromium %v took %v", extra, time.Since(start)) }()
		out, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...).Output()
		if ctx.Err() != nil {
			t.Errorf("chromium did not finish: %v", ctx.Err())
		}
		_ = err // chromium's exit status is not meaningful with --dump-dom
		return string(out)
	}
	// Both loads at once: each takes seconds of Chromium start-up.
	var with, without string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); with = load("--ignore-certificate-errors-spki-list=" + m.Info().SPKIHash) }()
	go func() { defer wg.Done(); without = load() }()
	wg.Wait()
	if !strings.Contains(with, "hello from the one port") {
		t.Fatalf("with the banner's SPKI hash Chromium got:\n%s", with)
	}
	if strings.Contains(without, "hello from the one port") {
		t.Fatal("Chromium loaded the page without the SPKI flag: the test proves nothing")
	}
}
