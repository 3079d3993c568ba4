package main

import (
	"fmt"
	"time"
)

// The nearest-rank percentiles dualbench reports.
func Example_percentiles() {
	var l latencies
	for i := 1; i <= 200; i++ {
		l.add(time.Duration(i) * 100 * time.Microsecond)
	}
	s := l.summary()
	fmt.Printf("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms of %d samples\n", s.P50, s.P90, s.P99, s.Count)
	// Output: p50 10.0 ms, p90 18.0 ms, p99 19.8 ms of 200 samples
}

// Message sizes as -size takes them.
func Example_sizes() {
	sizes, err := parseSizes("64,1k,16KiB,32k,64k")
	fmt.Println(sizes, err, formatSizes(sizes))
	// Output: [64 1024 16384 32768 65536] <nil> 64,1k,16k,32k,64k
}

// The verifiable stream of chaos: a replayed block is caught at its offset.
func Example_verifier() {
	data := make([]byte, 3*patternBlock)
	newPattern(7).fill(data)
	v := newVerifier(7)
	fmt.Println(v.check(data[:2*patternBlock]))
	fmt.Println(v.check(data[patternBlock : 2*patternBlock]))
	// Output:
	// <nil>
	// dualbench: stream 7: byte 2055 is 0x01, want 0x02 (received block header at offset 2048 says block 1 of stream 7; want block 2 of stream 7)
}
