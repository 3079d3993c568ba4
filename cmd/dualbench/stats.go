package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// latencies collects duration samples. The zero value is an empty recorder
// ready to use; it is safe for concurrent use. It keeps every sample (a
// benchmark run records at most a few hundred thousand), so percentiles are
// exact rather than bucketed.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
}

// add records one sample.
func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// count returns the number of samples recorded so far.
func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.samples)
}

// summary returns the percentiles of the samples recorded so far.
func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	l.mu.Unlock()
	return summarize(s)
}

// latencySummary is the JSON form of a latency distribution, in milliseconds.
type latencySummary struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// summarize sorts s in place and returns its summary. An empty s gives the
// zero summary.
func summarize(s []time.Duration) latencySummary {
	if len(s) == 0 {
		return latencySummary{}
	}
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return latencySummary{
		Count: len(s),
		Min:   ms(s[0]),
		P50:   ms(percentile(s, 50)),
		P90:   ms(percentile(s, 90)),
		P99:   ms(percentile(s, 99)),
		Max:   ms(s[len(s)-1]),
		Mean:  ms(sum / time.Duration(len(s))),
	}
}

// percentile returns the p-th percentile (0 < p ≤ 100) of the sorted samples
// by the nearest-rank method: the smallest sample such that at least p% of
// the samples are less than or equal to it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// ms converts d to fractional milliseconds rounded to microseconds.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

// median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio returns a/b, or 0 when b is 0, rounded to three decimals.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// round3 rounds x to three decimals for readable JSON.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
