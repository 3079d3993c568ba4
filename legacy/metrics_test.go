package legacy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricValue sums the samples of name whose labels include want.
func metricValue(tb testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			matched := 0
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
					matched++
				}
			}
			if matched != len(want) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			}
		}
	}
	return total
}

func TestMetricsAndWarning(t *testing.T) {
	reg := prometheus.NewRegistry()
	ts := startServer(t, &ServerOptions{Registerer: reg}, nil)
	if !strings.Contains(ts.log.String(), "weak cryptography") {
		t.Fatal("no weak-cryptography warning at start")
	}
	if _, err := NewServer(&ServerOptions{Registerer: reg}); err == nil {
		t.Fatal("second registration with the same registry succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, "tcp", ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess := ts.accept(t)
	mustWrite(t, c, []byte("12345"))
	mustRead(t, sess, 5)
	bad := rawDial(t, ts.addr)
	mustWrite(t, bad, appendNewRequest(nil, 0))
	expectClosed(t, bad)

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metricActive, nil, 1},
		{metricSessions, nil, 1},
		{metricHandshakes, map[string]string{"type": "new", "result": "ok"}, 1},
		{metricHandshakes, map[string]string{"type": "new", "result": resultBadKey}, 1},
		{metricBytes, map[string]string{"direction": "in"}, 5},
	}
	for _, ck := range checks {
		waitFor(t, func() bool { return metricValue(t, reg, ck.name, ck.labels) == ck.want },
			fmt.Sprintf("%s%v = %v", ck.name, ck.labels, ck.want))
	}
	_ = c.Close()
	_ = sess.Close()
	waitFor(t, func() bool { return metricValue(t, reg, metricActive, nil) == 0 }, "active back to 0")
}
