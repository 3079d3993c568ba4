package proxytest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dualgate/dualgate/internal/testenv"
)

// Implementation constants.
const (
	// startTimeout bounds how long StartDante waits for danted to listen.
	startTimeout = 30 * time.Second
	// stopTimeout bounds how long Cleanup waits for danted to exit after
	// SIGTERM before it sends SIGKILL.
	stopTimeout = 10 * time.Second
	// waitTimeout bounds WaitRelayed.
	waitTimeout = 30 * time.Second
	// startAttempts is how often StartDante retries when the free port it
	// picked was taken before danted could bind it.
	startAttempts = 5
)

// DanteOptions configures StartDante. A nil *DanteOptions means no
// authentication.
type DanteOptions struct {
	// Auth makes Dante require RFC 1929 username/password authentication.
	// The returned URL carries the credentials of TestUser.
	Auth bool
	// Hostnames makes the URL scheme socks5h (remote DNS) instead of socks5.
	Hostnames bool
}

// Dante is a running danted. Its fields are read-only; its methods are safe
// for concurrent use. StartDante registers its shutdown with tb.Cleanup.
type Dante struct {
	// URL is the proxy URL: socks5:// (or socks5h://) and 127.0.0.1:port,
	// with the test user's credentials when DanteOptions.Auth is set.
	URL *url.URL
	// Addr is the host:port danted listens on.
	Addr string

	relayed      counter
	authFailures counter
	mu           struct {
		sync.Mutex
		log bytes.Buffer
	}
}

// StartDante writes a danted configuration into tb.TempDir(), starts the real
// /usr/sbin/danted on a free 127.0.0.1 port, waits until it accepts
// connections, and stops it (the whole process group) in tb.Cleanup. Dante
// relays CONNECT requests from loopback clients to IPv4 targets.
func StartDante(tb testing.TB, opts *DanteOptions) *Dante {
	tb.Helper()
	if opts == nil {
		opts = &DanteOptions{}
	}
	bin := testenv.RequireBinary(tb, "danted", "/usr/sbin/danted")
	var user, password string
	if opts.Auth {
		user, password = ensureTestUser(tb)
	}
	dir := tb.TempDir()
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("proxytest: pick a port for danted: %v", err)
		}
		d, err := startDante(tb, bin, dir, port, user)
		if err == nil {
			scheme := "socks5"
			if opts.Hostnames {
				scheme = "socks5h"
			}
			d.URL = &url.URL{Scheme: scheme, Host: d.Addr}
			if opts.Auth {
				d.URL.User = url.UserPassword(user, password)
			}
			return d
		}
		lastErr = err
	}
	tb.Fatalf("proxytest: danted did not start after %d attempts: %v", startAttempts, lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func danteConfig(port int, user string) string {
	method, userRule := "none", ""
	if user != "" {
		method, userRule = "username", "\n  socksmethod: username\n  user: "+user
	}
	return fmt.Sprintf(`# Written by internal/proxydial/proxytest for one test.
logoutput: stdout
internal: 127.0.0.1 port = %d
external: 127.0.0.1
clientmethod: none
socksmethod: %s
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  log: error
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect%s
  log: error connect disconnect
}
socks block {
  from: 0.0.0.0/0 to: 0.0.0.0/0
  log: error connect
}
`, port, method, userRule)
}

// startDante runs one danted and waits for its "running" line (logged once
// the listening socket is bound) or its exit.
func startDante(tb testing.TB, bin, dir string, port int, user string) (*Dante, error) {
	conf := filepath.Join(dir, fmt.Sprintf("danted-%d.conf", port))
	if err := os.WriteFile(conf, []byte(danteConfig(port, user)), 0o644); err != nil {
		tb.Fatalf("proxytest: write danted config: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatalf("proxytest: pipe: %v", err)
	}
	cmd := exec.Command(bin, "-f", conf, "-p", filepath.Join(dir, fmt.Sprintf("danted-%d.pid", port)), "-N", "1")
	cmd.Stdout, cmd.Stderr = pw, pw
	// A process group of its own, so that Cleanup stops danted's children
	// (negotiate, request and io processes) with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		tb.Fatalf("proxytest: start danted: %v", err)
	}
	pw.Close() // the children hold the only write ends now

	d := &Dante{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	running := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // RoutineReadDanteLog: owned by the cleanup below, ends at EOF
		defer close(readerDone)
		d.readLog(pr, running)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when danted's main process exits

	var exitErr error
	exitSeen := false
	stop := func() {
		pgid := cmd.Process.Pid
		if !exitSeen {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
		}
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		if !exitSeen {
			select {
			case <-exited:
			case <-timer.C:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				<-exited
			}
		}
		// Children may outlive the main process briefly; the log pipe
		// reaches EOF when the last one is gone.
		select {
		case <-readerDone:
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-readerDone
		}
		pr.Close()
	}

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-running:
	case exitErr = <-exited:
		exitSeen = true
		stop()
		return nil, fmt.Errorf("danted exited (%v): %s", exitErr, d.Log())
	case <-timer.C:
		stop()
		return nil, fmt.Errorf("danted did not report running within %v: %s", startTimeout, d.Log())
	}
	tb.Cleanup(stop)
	// The running line follows the bind; a connection proves it.
	c, err := net.DialTimeout("tcp", d.Addr, startTimeout)
	if err != nil {
		return nil, fmt.Errorf("danted is running but does not accept on %s: %w", d.Addr, err)
	}
	c.Close()
	return d, nil
}

// readLog keeps danted's log and counts the connections it relayed ("tcp/
// connect [" opens a relayed session) and the failed authentications.
func (d *Dante) readLog(r *os.File, running chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	sawRunning := false
	for sc.Scan() {
		line := sc.Text()
		d.mu.Lock()
		if d.mu.log.Len() < 1<<20 {
			d.mu.log.WriteString(line)
			d.mu.log.WriteByte('\n')
		}
		d.mu.Unlock()
		switch {
		case strings.Contains(line, "pass(") && strings.Contains(line, "tcp/connect ["):
			d.relayed.add()
		case strings.Contains(line, "block(") && strings.Contains(line, "authentication failed"):
			d.authFailures.add()
		}
		if !sawRunning && strings.Contains(line, " running") {
			sawRunning = true
			close(running)
		}
	}
}

// Relayed returns how many TCP connections Dante has relayed so far (as
// logged; the log line may follow the client's success by a moment, so use
// WaitRelayed to assert).
func (d *Dante) Relayed() int { return d.relayed.load() }

// AuthFailures returns how many sessions Dante has refused because the
// username/password check failed.
func (d *Dante) AuthFailures() int { return d.authFailures.load() }

// WaitRelayed waits until Dante has logged at least n relayed connections,
// failing the test after 30 s.
func (d *Dante) WaitRelayed(tb testing.TB, n int) {
	tb.Helper()
	d.relayed.wait(tb, n, func(got int) string {
		return fmt.Sprintf("Dante logged %d relayed connections, want at least %d; log:\n%s", got, n, d.Log())
	})
}

// WaitAuthFailures waits until Dante has logged at least n failed
// authentications, failing the test after 30 s.
func (d *Dante) WaitAuthFailures(tb testing.TB, n int) {
	tb.Helper()
	d.authFailures.wait(tb, n, func(got int) string {
		return fmt.Sprintf("Dante logged %d failed authentications, want at least %d; log:\n%s", got, n, d.Log())
	})
}

// Log returns what danted has logged so far (the first MiB).
func (d *Dante) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.log.String()
}
