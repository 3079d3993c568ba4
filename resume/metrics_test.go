package resume

import (
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dualgate/dualgate/resume/resumetest"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	k, _ := GenerateKey()
	o := fastOpts(k)
	o.Registerer = reg
	ts := newTestServer(t, o)
	p := resumetest.NewProxy(t, ts.tcp.Addr().String())
	creg := prometheus.NewRegistry()
	do := fastDial("")
	do.Registerer = creg
	c, sc := dialPair(t, ts, "tcp://"+p.Addr(), do)
	if _, err := sc.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	p.KillAll()
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sc, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	// A forged resume is refused and counted.
	rs := rawNew(t, ts, PatternNN)
	ts.acceptOne(t)
	id := rs.id
	id[0] ^= 1
	_, msg := resumeMsg(t, id, rs.secret, 1, nil)
	_, ans := exchange(t, ts, msg)
	wantRefuse(t, ans, CloseUnknownSession)

	if got := value(t, ts.srv.m.resumes); got < 1 {
		t.Errorf("server resumes %v", got)
	}
	if got := value(t, ts.srv.m.refused.WithLabelValues("unknown session")); got != 1 {
		t.Errorf("refused unknown session %v", got)
	}
	if got := value(t, ts.srv.m.bytesOut); got < 1000 {
		t.Errorf("bytes out %v", got)
	}
	if got := value(t, ts.srv.m.bytesIn); got < 5 {
		t.Errorf("bytes in %v", got)
	}
	if got := value(t, ts.srv.m.active); got != 2 {
		t.Errorf("active sessions %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"dualgate_resume_handshake_seconds", "dualgate_resume_resume_seconds",
		"dualgate_resume_sessions_active", "dualgate_resume_sessions_detached", "dualgate_resume_bytes_replayed_total",
		"dualgate_resume_refused_total", "dualgate_resume_resumes_total", "dualgate_resume_bytes_in_total", "dualgate_resume_bytes_out_total"} {
		if !names[n] {
			t.Errorf("metric %s not gathered", n)
		}
	}
	if got := value(t, c.s.cl.m.bytesOut); got < 5 {
		t.Errorf("client bytes out %v", got)
	}
	if got := value(t, c.s.cl.m.resumes); got < 1 {
		t.Errorf("client resumes %v", got)
	}
}

func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}
