package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The idle scenario holds its measured sessions in worker processes
// ("dualbench idle-worker"), a few thousand each, because every session is
// one socket on the client side and RLIMIT_NOFILE may not be raisable (the
// development sandbox has a hard limit of 20,000 and no CAP_SYS_RESOURCE).
//
// A worker takes the idle flags (with -addr), opens -sessions sessions and
// reports on stdout, one line each:
//
//	progress OPENED FAILED
//	error MESSAGE            (the first few distinct errors)
//	ready OPENED FAILED      (every attempt made; sessions held)
//
// It holds the sessions until its stdin ends, then closes them and exits.

// sessionsPerWorker is the share of one idle worker process.
const sessionsPerWorker = 5000

// idleWorkerMain is the hidden "idle-worker" subcommand.
func idleWorkerMain(args []string, stdin io.Reader, stdout io.Writer) error {
	cfg, err := parseArgs(append([]string{"idle"}, args...), io.Discard)
	if err != nil {
		return err
	}
	if _, err := raiseFileLimit(1 << 20); err != nil {
		return fmt.Errorf("dualbench: idle-worker: %w", err)
	}
	b := newClientBench(&cfg, io.Discard)
	b.gwAddr, b.caFile = cfg.addr, cfg.caFile
	if err := b.loadRoots(); err != nil {
		return err
	}
	sys := b.gatewaySystem(cfg.transports[0])
	up := parseUpstreamKind(cfg.upstream)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		outMu          sync.Mutex
		opened, failed atomic.Int64
		connsMu        sync.Mutex
		conns          []net.Conn
		errSeen        = map[string]bool{}
	)
	say := func(format string, a ...any) {
		outMu.Lock()
		fmt.Fprintf(stdout, format+"\n", a...)
		outMu.Unlock()
	}
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				c, err := openIdle(ctx, sys, up)
				if err != nil {
					failed.Add(1)
					msg := strings.ReplaceAll(err.Error(), "\n", " ")
					outMu.Lock()
					if !errSeen[msg] && len(errSeen) < maxErrorKinds {
						errSeen[msg] = true
						fmt.Fprintf(stdout, "error %s\n", msg)
					}
					outMu.Unlock()
					continue
				}
				opened.Add(1)
				connsMu.Lock()
				conns = append(conns, c)
				connsMu.Unlock()
			}
		}()
	}
	stopTick := make(chan struct{})
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopTick:
				return
			case <-t.C:
				say("progress %d %d", opened.Load(), failed.Load())
			}
		}
	}()
	for range cfg.sessions {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	close(stopTick)
	<-tickDone
	say("ready %d %d", opened.Load(), failed.Load())

	io.Copy(io.Discard, stdin) //nolint:errcheck // hold until the parent closes stdin
	closeAll(conns, cfg.conns)
	return nil
}

// closeAll closes conns with n concurrent closers.
func closeAll(conns []net.Conn, n int) {
	ch := make(chan net.Conn)
	var wg sync.WaitGroup
	for range max(n, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range ch {
				closeConn(c)
			}
		}()
	}
	for _, c := range conns {
		ch <- c
	}
	close(ch)
	wg.Wait()
}

// idleWorker is the parent's handle on one worker process.
type idleWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	opened atomic.Int64
	failed atomic.Int64
	ready  chan struct{}
	exited chan struct{}
	mu     sync.Mutex
	errs   []string
}

// startIdleWorker starts a worker opening n sessions.
func startIdleWorker(b *bench, n, conns int) (*idleWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("dualbench: idle worker: %w", err)
	}
	cfg := b.cfg
	args := []string{"idle-worker", "-addr", b.gwAddr, "-sessions", strconv.Itoa(n), "-conns", strconv.Itoa(conns),
		"-transport", cfg.transports[0], "-upstream", cfg.upstream, "-route-sink", cfg.routeSink,
		"-route-echo", cfg.routeEcho, "-route-builtin", cfg.routeBuiltin, "-sources", strconv.Itoa(cfg.sources),
		"-suite", cfg.suite}
	if b.caFile != "" {
		args = append(args, "-ca", b.caFile)
	}
	if cfg.serverKey != "" {
		args = append(args, "-server-key", cfg.serverKey)
	}
	if cfg.alwaysSeal {
		args = append(args, "-always-seal")
	}
	w := &idleWorker{ready: make(chan struct{}), exited: make(chan struct{})}
	w.cmd = exec.Command(exe, args...)
	w.cmd.Env = append(childEnv(), asMainEnv+"=1")
	w.cmd.Stderr = os.Stderr
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dualbench: idle worker: %w", err)
	}
	go func() {
		defer close(w.exited)
		sc := bufio.NewScanner(stdout)
		readyOnce := sync.Once{}
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			switch kind {
			case "progress", "ready":
				var o, f int64
				fmt.Sscan(rest, &o, &f) //nolint:errcheck // a malformed line leaves zeros
				w.opened.Store(o)
				w.failed.Store(f)
				if kind == "ready" {
					readyOnce.Do(func() { close(w.ready) })
				}
			case "error":
				w.mu.Lock()
				w.errs = append(w.errs, rest)
				w.mu.Unlock()
			}
		}
		w.cmd.Wait() //nolint:errcheck // the exit is reported through ready/exited
		readyOnce.Do(func() {})
	}()
	return w, nil
}

// stop closes the worker's stdin (its sessions close) and waits, killing it
// after a bound.
func (w *idleWorker) stop() {
	w.stdin.Close()
	select {
	case <-w.exited:
	case <-time.After(2 * time.Minute):
		w.cmd.Process.Kill() //nolint:errcheck // exited meanwhile is fine
		<-w.exited
	}
}
