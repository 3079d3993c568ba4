package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gatewayProc is a gateway process started by dualbench.
type gatewayProc struct {
	cmd     *exec.Cmd
	addr    string // 127.0.0.1:port
	dataDir string
	logPath string
	exited  chan struct{}
	waitErr error // valid after exited is closed
}

// Bounds of starting and stopping a gateway.
const (
	gatewayBuildTimeout = 5 * time.Minute
	gatewayStartTimeout = 60 * time.Second
	gatewayStopTimeout  = 20 * time.Second
)

// gatewayBinary returns an executable for path: path itself when it is an
// executable file, else the result of `go build` of the package directory
// path, written into dir.
func gatewayBinary(ctx context.Context, path, dir string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("dualbench: -gateway: %w", err)
	}
	if !st.IsDir() {
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("dualbench: -gateway %s is not executable", path)
		}
		return filepath.Abs(path)
	}
	out := filepath.Join(dir, "gateway")
	ctx, cancel := context.WithTimeout(ctx, gatewayBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = path
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dualbench: go build %s: %w\n%s", path, err, msg.Bytes())
	}
	return out, nil
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dualbench: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// childEnv returns the environment for a child process: ours without any
// DUALGATE_* variable, so that only the flags dualbench passes configure the
// gateway.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DUALGATE_") {
			env = append(env, kv)
		}
	}
	return env
}

// startGateway runs bin on a free loopback port with a fresh data directory
// inside dir and waits until /healthz answers 200.
func startGateway(ctx context.Context, bin, dir string, args []string) (*gatewayProc, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between freePort and listen
		g, err := startGatewayOnce(ctx, bin, dir, attempt, args)
		if err == nil {
			return g, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startGatewayOnce(ctx context.Context, bin, dir string, attempt int, args []string) (*gatewayProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &gatewayProc{
		addr:    fmt.Sprintf("127.0.0.1:%d", port),
		dataDir: filepath.Join(dir, fmt.Sprintf("data%d", attempt)),
		logPath: filepath.Join(dir, fmt.Sprintf("gateway%d.log", attempt)),
		exited:  make(chan struct{}),
	}
	if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dualbench: gateway data dir: %w", err)
	}
	logf, err := os.Create(g.logPath)
	if err != nil {
		return nil, fmt.Errorf("dualbench: gateway log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	full := append([]string{"-listen", g.addr, "-data-dir", g.dataDir}, args...)
	g.cmd = exec.Command(bin, full...)
	g.cmd.Env = childEnv()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive dualbench
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dualbench: start gateway: %w", err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitHealthy(ctx); err != nil {
		g.stop()
		return nil, fmt.Errorf("%w\ngateway %s\n--- gateway log (tail) ---\n%s", err, strings.Join(full, " "), g.logTail(4096))
	}
	return g, nil
}

// pid returns the gateway's process id.
func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// waitHealthy polls /healthz until it answers 200, the process exits, or the
// start timeout passes.
func (g *gatewayProc) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, gatewayStartTimeout)
	defer cancel()
	client := noKeepAliveClient(2 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.addr+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) //nolint:errcheck // drain only
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("dualbench: gateway exited before it was healthy: %v", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("dualbench: gateway not healthy on http://%s/healthz within %v (last: %v)", g.addr, gatewayStartTimeout, err)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits for the drain, then kills. It returns the
// process's exit error, if any other than the signal we sent.
func (g *gatewayProc) stop() error {
	select {
	case <-g.exited:
		return g.exitError()
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // exited meanwhile is fine
	select {
	case <-g.exited:
		return g.exitError()
	case <-time.After(gatewayStopTimeout):
		g.cmd.Process.Kill() //nolint:errcheck // exited meanwhile is fine
		<-g.exited
		return fmt.Errorf("dualbench: gateway did not exit within %v of SIGTERM; killed", gatewayStopTimeout)
	}
}

// exitError reports an unexpected exit (status other than 0 or SIGTERM).
func (g *gatewayProc) exitError() error {
	var ee *exec.ExitError
	if g.waitErr == nil {
		return nil
	}
	if errors.As(g.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("dualbench: gateway exit: %w", g.waitErr)
}

// alive reports whether the process is still running.
func (g *gatewayProc) alive() bool {
	select {
	case <-g.exited:
		return false
	default:
		return true
	}
}

// logTail returns up to the last n bytes of the gateway's log.
func (g *gatewayProc) logTail(n int64) string {
	f, err := os.Open(g.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart) //nolint:errcheck // best effort
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// gatewayFlagNames returns the flags bin lists in its -h output, so that
// dualbench can lift limits a scenario would otherwise hit, on gateway
// versions that have them.
func gatewayFlagNames(ctx context.Context, bin string) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput() // -h exits non-zero in many programs
	return parseFlagNames(string(out))
}

// parseFlagNames extracts "-name" at the start of indented usage lines.
func parseFlagNames(usage string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(usage) {
		f := strings.Fields(line)
		if len(f) == 0 || len(line) == len(strings.TrimLeft(line, " \t")) || !strings.HasPrefix(f[0], "-") {
			continue
		}
		name := strings.TrimLeft(f[0], "-")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		if name != "" {
			names[name] = true
		}
	}
	return names
}

// liftLimits returns gateway flags that raise the connection and session
// limits the gateway supports above what a scenario with n sessions
// needs, skipping flags the user already set with -gateway-flag.
func liftLimits(supported map[string]bool, user []string, n int) []string {
	given := func(name string) bool {
		for _, u := range user {
			u = strings.TrimLeft(u, "-")
			if u == name || strings.HasPrefix(u, name+"=") {
				return true
			}
		}
		return false
	}
	var out []string
	for _, name := range []string{"max-conns", "max-sessions"} {
		if supported[name] && !given(name) {
			out = append(out, fmt.Sprintf("-%s=%d", name, 2*n+10000))
		}
	}
	return out
}
