package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// asMainEnv makes a test binary behave as dualbench's main (see TestMain),
// so that the baseline child process works under `go test` too.
const asMainEnv = "DUALBENCH_AS_MAIN"

// baselineProc is the child process that serves the baselines.
type baselineProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	addrs  baselineAddrs
	exited chan struct{}
	err    error // valid after exited is closed
}

// startBaselineProc re-executes dualbench as "baseline-server" in front of
// the given upstreams and reads the addresses it listens on.
func startBaselineProc(ctx context.Context, sinkAddr, echoAddr string) (*baselineProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("dualbench: baseline: %w", err)
	}
	p := &baselineProc{exited: make(chan struct{})}
	p.cmd = exec.Command(exe, "baseline-server", "-sink", sinkAddr, "-echo", echoAddr)
	p.cmd.Env = append(childEnv(), asMainEnv+"=1")
	p.cmd.Stderr = os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("dualbench: baseline: %w", err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("dualbench: baseline: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dualbench: baseline: %w", err)
	}
	line := make(chan error, 1)
	go func() {
		r := bufio.NewReader(io.LimitReader(stdout, 1<<20))
		b, err := r.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(b, &p.addrs)
		}
		line <- err
		io.Copy(io.Discard, stdout) //nolint:errcheck // keep the pipe drained until exit
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case err = <-line:
	case <-timer.C:
		err = fmt.Errorf("no addresses within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("dualbench: baseline server: %w", err)
	}
	return p, nil
}

// pid returns the child's process id.
func (p *baselineProc) pid() int { return p.cmd.Process.Pid }

// stop closes the child's stdin (its signal to exit) and waits, killing it
// after a bound.
func (p *baselineProc) stop() {
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill() //nolint:errcheck // exited meanwhile is fine
		<-p.exited
	}
}
