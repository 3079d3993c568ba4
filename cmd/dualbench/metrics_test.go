package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const sampleExposition = `# HELP dualgate_resume_bytes_replayed_total Application bytes retransmitted after a resume.
# TYPE dualgate_resume_bytes_replayed_total counter
dualgate_resume_bytes_replayed_total{side="server"} 1234
dualgate_wsbridge_bytes_total{direction="in",route="/a b{c}"} 10
dualgate_wsbridge_bytes_total{direction="out",route="/q\"x}"} 5.5
go_goroutines 42
process_start_time_seconds 1.7e+09 1700000000000
weird_nan NaN
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics([]byte(sampleExposition))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 6 {
		t.Fatalf("%d samples: %+v", len(m), m)
	}
	if v, ok := m.sum("dualgate_wsbridge_bytes_total"); !ok || v != 15.5 {
		t.Fatalf("sum = %v, %v", v, ok)
	}
	if v, ok := m.sum("go_goroutines"); !ok || v != 42 {
		t.Fatalf("go_goroutines = %v, %v", v, ok)
	}
	if _, ok := m.sum("missing"); ok {
		t.Fatal("missing metric found")
	}
	v, names := m.sumMatching("replayed")
	if v != 1234 || len(names) != 1 || names[0] != "dualgate_resume_bytes_replayed_total" {
		t.Fatalf("sumMatching = %v %v", v, names)
	}
	if m[1].Labels != `direction="in",route="/a b{c}"` {
		t.Fatalf("labels %q", m[1].Labels)
	}
	if v, _ := m.sum("weird_nan"); v != 0 {
		t.Fatalf("NaN counted as %v", v)
	}
}

func TestParseMetricsRejects(t *testing.T) {
	for _, bad := range []string{
		`x{a="b" 1`,
		`x{a="}"`,
		`x`,
		`x 1 2 3`,
		`x one`,
		`bad-name 1`,
		`{a="b"} 1`,
	} {
		if _, err := parseMetrics([]byte(bad + "\n")); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// Truncations of a valid line either parse or fail; they never panic, and
	// a line cut inside its label set always fails.
	line := `dualgate_x_total{route="/r"} 7`
	for n := len("dualgate_x_total{") + 1; n < strings.Index(line, "}"); n++ {
		if _, err := parseMetrics([]byte(line[:n])); err == nil {
			t.Errorf("accepted truncated %q", line[:n])
		}
	}
}

// TestScrapeRoundTrip serves a real Prometheus registry over loopback and
// reads it back.
func TestScrapeRoundTrip(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dualgate_test_total", Help: "h"}, []string{"route"})
	reg.MustRegister(c)
	c.WithLabelValues(`/a "quoted" {x}`).Add(3)
	c.WithLabelValues("/b").Add(4)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	defer srv.Close()
	m, err := scrapeMetrics(context.Background(), noKeepAliveClient(10e9), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.sum("dualgate_test_total"); !ok || v != 7 {
		t.Fatalf("sum = %v, %v", v, ok)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(sampleExposition))
	f.Add([]byte(`a{b="\"}"} 1`))
	f.Add([]byte("x{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMetrics(b)
		if err != nil {
			return
		}
		for _, s := range m {
			if s.Name == "" {
				t.Fatalf("empty name accepted from %q", b)
			}
		}
	})
}
