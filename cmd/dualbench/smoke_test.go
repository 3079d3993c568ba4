package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The smoke tests run every scenario at a tiny size against the real
// gateway binary, built from this module with `go build`. They fail when the
// gateway does not build, does not start, or does not carry the traffic.

// gatewayBuild is the gateway binary shared by the smoke tests (TestMain
// removes its directory).
var gatewayBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// gatewayBin builds ./cmd/gateway once per test binary.
func gatewayBin(t *testing.T) string {
	t.Helper()
	gatewayBuild.once.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			gatewayBuild.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if gatewayBuild.dir, err = os.MkdirTemp("", "dualbench-smoke-"); err != nil {
			gatewayBuild.err = err
			return
		}
		bin := filepath.Join(gatewayBuild.dir, "gateway")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			gatewayBuild.err = fmt.Errorf("go build ./cmd/gateway: %w\n%s", err, msg)
			return
		}
		gatewayBuild.bin = bin
	})
	if gatewayBuild.err != nil {
		t.Fatal(gatewayBuild.err)
	}
	return gatewayBuild.bin
}

// smoke runs dualbench with args against the built gateway, requires exit
// status 0 and decodes the JSON result into result.
func smoke(t *testing.T, result any, args ...string) *report {
	t.Helper()
	full := append(args[:1:1], append([]string{"-gateway", gatewayBin(t), "-json", "-timeout", "90s"}, args[1:]...)...)
	var stdout, stderr bytes.Buffer
	code := run(full, strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("dualbench %s: exit %d\nstderr:\n%s\nstdout:\n%s", strings.Join(full, " "), code, tail(stderr.String(), 6000), tail(stdout.String(), 3000))
	}
	var rep struct {
		report
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("JSON result: %v\n%s", err, stdout.String())
	}
	if err := json.Unmarshal(rep.Result, result); err != nil {
		t.Fatalf("JSON result body: %v\n%s", err, rep.Result)
	}
	if rep.Scenario != args[0] || rep.Gateway.PID == 0 || rep.Date == "" {
		t.Fatalf("report header %+v", rep.report)
	}
	if len(rep.Failures) > 0 {
		t.Fatalf("failures: %v", rep.Failures)
	}
	if !strings.Contains(stderr.String(), "s  ") {
		t.Errorf("no progress lines on stderr:\n%s", tail(stderr.String(), 2000))
	}
	return &rep.report
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func TestSmokeThroughput(t *testing.T) {
	var res throughputResult
	smoke(t, &res, "throughput", "-duration", "1.2s", "-warmup", "200ms", "-size", "1k", "-conns", "2", "-transport", "ws,wss")
	if len(res.Runs) != 5 {
		t.Fatalf("%d runs, want 5 (tcp, ws-bridge and gateway over ws and wss)", len(res.Runs))
	}
	for _, r := range res.Runs {
		if r.Error != "" || r.Bytes <= 0 || r.MBps <= 0 || r.Seconds <= 0 {
			t.Errorf("run %+v", r)
		}
		if r.ServerCPU < 0 || r.ServerCPUPerGB < 0 {
			t.Errorf("negative CPU in %+v", r)
		}
	}
	if len(res.Summary) != 2 {
		t.Fatalf("summary %+v", res.Summary)
	}
	for _, s := range res.Summary {
		if s.GatewayMBps <= 0 || s.WSBridgeMBps <= 0 || s.TCPProxyMBps <= 0 || s.GatewayVsWSBridge <= 0 || s.GatewayVsTCPProxy <= 0 {
			t.Errorf("summary %+v", s)
		}
	}
}

func TestSmokeSessions(t *testing.T) {
	var res sessionsResult
	smoke(t, &res, "sessions", "-duration", "1s", "-warmup", "200ms", "-conns", "2", "-baselines")
	want := []string{"gateway/ws", "ws-bridge/ws", "tcp-proxy/tcp"}
	if len(res.Runs) != len(want) {
		t.Fatalf("runs %+v, want %v", res.Runs, want)
	}
	for i, r := range res.Runs {
		if r.System+"/"+r.Transport != want[i] || r.Completed <= 0 || r.Failed != 0 || r.PerSecond <= 0 ||
			r.FirstEcho.Count != int(r.Completed) || r.Dial.P99 <= 0 || r.FirstEcho.P50 < r.Dial.P50 {
			t.Fatalf("run %d (want %s): %+v", i, want[i], r)
		}
		if (r.System == "gateway") != (r.Target != "") {
			t.Errorf("%s: target verdict %q", want[i], r.Target)
		}
	}
}

// TestSmokeSessionsPinned pins the started gateway's key (NK): a wrong key
// would make every Dial fail with 4008. The window is long enough for a
// wss handshake under -race on a loaded 2-core machine.
func TestSmokeSessionsPinned(t *testing.T) {
	var res sessionsResult
	rep := smoke(t, &res, "sessions", "-duration", "3s", "-warmup", "100ms", "-conns", "2", "-pin", "-transport", "wss")
	if rep.Config.Pattern != "NK" || len(res.Runs) != 1 || res.Runs[0].Completed <= 0 || res.Runs[0].Failed != 0 {
		t.Fatalf("pattern %s, runs %+v", rep.Config.Pattern, res.Runs)
	}
}

func TestSmokeIdle(t *testing.T) {
	var res idleResult
	smoke(t, &res, "idle", "-sessions", "60", "-conns", "4", "-settle", "100ms")
	if res.Sessions != 60 || res.Failed != 0 || res.RSSAfter <= 0 || res.RSSBefore <= 0 || res.Warmup < 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestSmokeResume(t *testing.T) {
	var res resumeResult
	smoke(t, &res, "resume", "-sessions", "2", "-duration", "1s", "-warmup", "200ms", "-kill-every", "100ms")
	if res.Kills <= 0 || res.Measured <= 0 || res.DialToFirstData.Count != res.Measured || res.BytesVerified <= 0 {
		t.Fatalf("result %+v", res)
	}
	if res.DialToFirstData.P50 <= 0 || res.KillToFirstData.P50 < res.DialToFirstData.Min {
		t.Fatalf("latencies %+v", res)
	}
	// Every sample splits into the gateway's time and the rest, both
	// positive and adding up (checked per sample by the run).
	g, c, d := res.GatewayTime, res.ClientProxyTime, res.DialToFirstData
	if res.Unattributed != 0 || g.Count != res.Measured || c.Count != res.Measured ||
		g.Min <= 0 || c.Min <= 0 || g.Max > d.Max || c.Max > d.Max || math.Abs(g.Mean+c.Mean-d.Mean) > 0.003 { // means rounded to µs
		t.Fatalf("unattributed %d, gateway %+v, client + proxy %+v, dial → first DATA %+v", res.Unattributed, g, c, d)
	}
	// The three exchanges are the gateway's time, sample by sample.
	u, h, r := res.GatewayUpgrade, res.GatewayHello, res.GatewayReplay
	if u.Count != g.Count || h.Count != g.Count || r.Count != g.Count || math.Abs(u.Mean+h.Mean+r.Mean-g.Mean) > 0.003 {
		t.Fatalf("exchanges %+v, %+v, %+v do not add up to the gateway's time %+v", u, h, r, g)
	}
}

func TestSmokeChaos(t *testing.T) {
	var res chaosResult
	smoke(t, &res, "chaos", "-sessions", "2", "-duration", "1.5s", "-kill-every", "100ms", "-size", "4k")
	if res.Verdict != "ok" || res.Kills <= 0 || res.BytesWritten == 0 || res.BytesVerified != res.BytesWritten ||
		res.EchoSessions != 1 || res.SinkSessions != 1 {
		t.Fatalf("result %+v", res)
	}
}
