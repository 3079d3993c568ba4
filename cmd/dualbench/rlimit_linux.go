package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// raiseFileLimit raises RLIMIT_NOFILE as far as allowed (the hard limit, or
// up to fs.nr_open when the process may raise the hard limit, e.g. as root)
// so that the idle scenario can hold tens of thousands of sockets. Child
// processes (the gateway, the baselines) inherit it. It returns the new soft
// limit.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		// Set it anyway: the Go runtime restores the limit it found at start
		// in child processes unless the program set one itself.
		return lim.Cur, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Max < want {
		ceiling := want
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < ceiling {
				ceiling = n
			}
		}
		try := syscall.Rlimit{Cur: ceiling, Max: ceiling}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
			return ceiling, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
