package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints a status line about once a second until stop, and a
// last one when it stops (so even a short phase reports once). The status
// function is called from progress's own goroutine, so it must be safe to
// call concurrently with the scenario (read atomics).
type progress struct {
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

// progressInterval is how often progress lines are printed.
const progressInterval = time.Second

// startProgress prints "label  elapsed  status()" to w every second.
func startProgress(w io.Writer, label string, status func() string) *progress {
	p := &progress{stopCh: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(p.done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		line := func() { fmt.Fprintf(w, "%-28s %6.1fs  %s\n", label, time.Since(start).Seconds(), status()) }
		for {
			select {
			case <-p.stopCh:
				line()
				return
			case <-t.C:
				line()
			}
		}
	}()
	return p
}

// stop ends the progress output and waits for its goroutine. It is
// idempotent.
func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// mbps formats a byte rate.
func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round3(float64(bytes) / d.Seconds() / 1e6)
}
