package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p1", []time.Duration{7}, 1, 7},
		{"single p99", []time.Duration{7}, 99, 7},
		{"ten p50", ten, 50, 5 * time.Millisecond},
		{"ten p90", ten, 90, 9 * time.Millisecond},
		{"ten p91 rounds up", ten, 91, 10 * time.Millisecond},
		{"ten p99", ten, 99, 10 * time.Millisecond},
		{"ten p100", ten, 100, 10 * time.Millisecond},
		{"ten p10", ten, 10, 1 * time.Millisecond},
		{"ten p0 clamps", ten, 0, 1 * time.Millisecond},
		{"two p50", []time.Duration{1, 2}, 50, 1},
		{"two p51", []time.Duration{1, 2}, 51, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.samples, tt.p); got != tt.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tt.samples, tt.p, got, tt.want)
			}
		})
	}
}

// TestPercentileDefinition checks the nearest-rank definition on random
// data: at least p% of the samples are ≤ the result, and fewer than p% are
// strictly below it.
func TestPercentileDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(300)
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(rng.IntN(50))
		}
		slices.Sort(s)
		for _, p := range []float64{1, 25, 50, 90, 99, 99.9, 100} {
			v := percentile(s, p)
			le, lt := 0, 0
			for _, x := range s {
				if x <= v {
					le++
				}
				if x < v {
					lt++
				}
			}
			if float64(le) < p/100*float64(n)-1e-9 || float64(lt) >= p/100*float64(n) {
				t.Fatalf("n=%d p=%v: value %v has %d ≤ and %d <", n, p, v, le, lt)
			}
		}
	}
}

func TestLatenciesSummary(t *testing.T) {
	var l latencies
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				l.add(time.Duration(g*25+i+1) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	s := l.summary()
	want := latencySummary{Count: 100, Min: 1, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	if l.count() != 100 {
		t.Fatalf("count = %d", l.count())
	}
	if (summarize(nil) != latencySummary{}) {
		t.Fatal("empty summary is not zero")
	}
}

func TestMedianRatio(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Fatalf("median odd = %v", got)
	}
	xs := []float64{4, 1, 3, 2}
	if got := median(xs); got != 2.5 {
		t.Fatalf("median even = %v", got)
	}
	if xs[0] != 4 {
		t.Fatal("median modified its input")
	}
	if median(nil) != 0 {
		t.Fatal("median of nothing")
	}
	if ratio(1, 0) != 0 || ratio(1, 3) != 0.333 || ratio(110, 100) != 1.1 {
		t.Fatalf("ratio: %v %v %v", ratio(1, 0), ratio(1, 3), ratio(110, 100))
	}
	if ms(1500*time.Microsecond) != 1.5 || ms(1234567) != 1.235 {
		t.Fatalf("ms: %v %v", ms(1500*time.Microsecond), ms(1234567))
	}
}

func TestSummarizeThroughput(t *testing.T) {
	runs := []throughputRun{
		{System: "tcp-proxy", Transport: "tcp", Size: targetSize, MBps: 1000, ServerCPUPerGB: 0.3},
		{System: "tcp-proxy", Transport: "tcp", Size: targetSize, MBps: 800, ServerCPUPerGB: 0.5},
		{System: "tcp-proxy", Transport: "tcp", Size: targetSize, MBps: 5, Error: "dial: refused"}, // ignored
		{System: "ws-bridge", Transport: "ws", Size: targetSize, MBps: 400},
		{System: "gateway", Transport: "ws", Size: targetSize, MBps: 450, ServerCPUPerGB: 2},
		{System: "gateway", Transport: "wss", Size: targetSize, MBps: 300},
		{System: "gateway", Transport: "ws", Size: 64, MBps: 10},
	}
	s := summarizeThroughput(runs, []int{64, targetSize}, []string{"ws", "wss"})
	if len(s) != 4 {
		t.Fatalf("%d summaries", len(s))
	}
	ws := s[2]
	if ws.TCPProxyMBps != 900 || ws.TCPProxyCPUPerGB != 0.4 || ws.GatewayVsWSBridge != 1.125 || ws.GatewayVsTCPProxy != 0.5 ||
		ws.WSBridgeVsTCPProxy != 0.444 || ws.TargetVsWSBridge != "met" || ws.TargetVsTCPProxy != "met" {
		t.Fatalf("ws summary %+v", ws)
	}
	wss := s[3]
	if wss.WSBridgeMBps != 0 || wss.TargetVsWSBridge != "" || wss.TargetVsTCPProxy != "not met" || wss.GatewayVsTCPProxy != 0.333 {
		t.Fatalf("wss summary %+v", wss)
	}
	if s[0].TargetVsWSBridge != "" || s[0].GatewayMBps != 10 {
		t.Fatalf("64 B summary %+v", s[0])
	}
}
