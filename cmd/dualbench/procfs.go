package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (the kernel ABI fixes it).
const clockTick = 100

// procCPU returns the CPU time (user + system) process pid has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("dualbench: cpu time: %w", err)
	}
	ticks, err := parseStatCPU(b)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// parseStatCPU returns utime+stime in clock ticks from the contents of
// /proc/PID/stat. The command name (field 2) is in parentheses and may itself
// contain spaces and parentheses, so fields are counted after the last ')'.
func parseStatCPU(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("dualbench: /proc stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15. Every
	// kernel since 2.6 writes at least 44 fields; asking for the fields up
	// to starttime (22) rejects lines cut short.
	const utime, stime, starttime = 14 - 3, 15 - 3, 22 - 3
	if len(f) <= starttime {
		return 0, fmt.Errorf("dualbench: /proc stat: %d fields after the command name, want at least %d", len(f), starttime+1)
	}
	u, err := strconv.ParseUint(string(f[utime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("dualbench: /proc stat utime: %w", err)
	}
	s, err := strconv.ParseUint(string(f[stime]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("dualbench: /proc stat stime: %w", err)
	}
	if u+s < u {
		return 0, fmt.Errorf("dualbench: /proc stat: cpu time overflows")
	}
	return u + s, nil
}

// procRSS returns the resident set size of process pid in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("dualbench: rss: %w", err)
	}
	return parseStatusField(b, "VmRSS")
}

// parseStatusField returns the value of a "Name:   123 kB" line of
// /proc/PID/status in bytes.
func parseStatusField(b []byte, name string) (int64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte(name+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("dualbench: /proc status %s: malformed line %q", name, bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("dualbench: /proc status %s: bad value %q", name, f[0])
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("dualbench: /proc status: no %s line", name)
}
