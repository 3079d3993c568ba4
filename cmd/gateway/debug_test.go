package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDebugListenerServesProfiles(t *testing.T) {
	d, err := startDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("status %d, body %.200q", resp.StatusCode, body)
	}
}

func TestDebugListenRejectsBadAddress(t *testing.T) {
	_, err := parseConfig([]string{"-debug-listen", "nonsense"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-debug-listen") {
		t.Fatalf("err = %v, want a -debug-listen error", err)
	}
}
