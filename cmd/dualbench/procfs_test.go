package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Field 2 with spaces and parentheses; utime=1234 stime=56.
	line := "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 123 456 789\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil || got != 1290 {
		t.Fatalf("parseStatCPU = %d, %v; want 1290", got, err)
	}
	for n := range len(line) - 20 {
		if _, err := parseStatCPU([]byte(line[:n])); err == nil {
			t.Fatalf("truncated stat line of %d bytes accepted", n)
		}
	}
	for _, bad := range []string{
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 12a 5 0 0 20 0 1 0 5",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 -1 5 0 0 20 0 1 0 5",
		"no parenthesis at all 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 1 0 0 20 0 1 0 5",
		"1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 5 0 0",
	} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
}

func TestProcCPUAndRSSOfSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU: at least one 10 ms tick, bounded by a deadline.
	deadline := time.Now().Add(30 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1 << 20 {
			x += i
		}
		after, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
	}
	if after, _ := procCPU(pid); after <= before {
		t.Fatalf("CPU time did not grow (%v → %v, %d)", before, after, x)
	}
	rss, err := procRSS(pid)
	if err != nil || rss < 1<<20 {
		t.Fatalf("procRSS = %d, %v", rss, err)
	}
	if _, err := procRSS(-1); err == nil {
		t.Fatal("procRSS(-1) succeeded")
	}
}

func TestParseStatusField(t *testing.T) {
	status := "Name:\tgateway\nVmPeak:\t  200 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	got, err := parseStatusField([]byte(status), "VmRSS")
	if err != nil || got != 12345*1024 {
		t.Fatalf("VmRSS = %d, %v", got, err)
	}
	for _, bad := range []string{
		"VmRSS:\t12345\n", "VmRSS: x kB\n", "VmRSS: -5 kB\n", "Name: x\n", "",
		"VmRSS: 99999999999999999 kB\n",
	} {
		if _, err := parseStatusField([]byte(bad), "VmRSS"); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	i := strings.Index(status, "kB")
	if _, err := parseStatusField([]byte(status[:i-3]), "VmRSS"); err == nil {
		t.Fatal("truncated status accepted")
	}
}

func FuzzParseStatCPU(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("1 (a) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5"))
	f.Add([]byte(")))"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStatCPU(b) //nolint:errcheck // must not panic or hang
	})
}

func FuzzParseStatusField(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("VmRSS: 1 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseStatusField(b, "VmRSS")
		if err == nil && v < 0 {
			t.Fatalf("negative RSS %d", v)
		}
	})
}
