package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/certs"
)

const filesName = "files.dualgate.example.com"

// testCA signs leaves for files mode; clients trust only it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	certPEM, keyPEM := selfSignedPEM(tb, "files test CA")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pair.Leaf)
	return &testCA{cert: pair.Leaf, key: pair.PrivateKey.(*ecdsa.PrivateKey), pool: pool}
}

func (ca *testCA) leaf(tb testing.TB) (certPEM, keyPEM []byte) {
	tb.Helper()
	return signedPEM(tb, filesName, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), ca.cert, ca.key, filesName)
}

// replaceFile writes b to path through a rename, as deploy tools do, so
// that a poll never sees half a file.
func replaceFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	tmp := path + ".new"
	writeFile(tb, tmp, b)
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

type filesGateway struct {
	port          *onePort
	mgr           *certs.Manager
	reg           *prometheus.Registry
	ca            *testCA
	certF, keyF   string
	firstCert     []byte
	firstCertLeaf *x509.Certificate
}

func startFilesGateway(t *testing.T, poll time.Duration) *filesGateway {
	t.Helper()
	ca := newTestCA(t)
	dir := t.TempDir()
	g := &filesGateway{ca: ca, certF: filepath.Join(dir, "cert.pem"), keyF: filepath.Join(dir, "key.pem"), reg: prometheus.NewRegistry()}
	c, k := ca.leaf(t)
	writeFile(t, g.certF, c)
	writeFile(t, g.keyF, k)
	g.firstCert = c
	log, _ := newTestLogger(t)
	g.port = listenOnePort(t)
	mgr, err := certs.New(context.Background(), &certs.Options{
		Mode: certs.ModeFiles, DataDir: dir, CertFile: g.certF, KeyFile: g.keyF,
		PollInterval: poll, Logger: log, Registerer: g.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	g.mgr = mgr
	g.port.serve(mgr.TLSConfig(), mgr.HTTPChallengeHandler, log)
	g.firstCertLeaf = g.served(t)
	return g
}

// served returns the leaf of a fresh handshake, verified against the CA.
func (g *filesGateway) served(t *testing.T) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", "127.0.0.1:"+strconv.Itoa(g.port.port()),
		&tls.Config{RootCAs: g.ca.pool, ServerName: filesName})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestFilesReloadKeepsLiveConnections(t *testing.T) {
	g := startFilesGateway(t, -1) // no polling: only Reload
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	// A live wss connection made with the first certificate.
	tr := &testTransport{port: g.port.port(), cfg: &tls.Config{RootCAs: g.ca.pool}}
	ws, _, err := websocket.Dial(ctx, "wss://"+filesName+"/echo", &websocket.DialOptions{HTTPClient: tr.client()})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	defer tr.close()
	echo := func(msg string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("live connection broken: %v", err)
		}
		if _, got, err := ws.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("live connection echo: %q, %v", got, err)
		}
	}
	echo("before")

	c2, k2 := g.ca.leaf(t)
	replaceFile(t, g.certF, c2)
	replaceFile(t, g.keyF, k2)
	if err := g.mgr.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := g.served(t)
	if second.SerialNumber.Cmp(g.firstCertLeaf.SerialNumber) == 0 {
		t.Fatal("new handshakes still get the first certificate after Reload")
	}
	if got, want := g.mgr.Info().SPKIHash, certs.SPKIHash(second); got != want {
		t.Errorf("Info().SPKIHash = %s, want the new leaf's %s", got, want)
	}
	echo("after reload")

	// Bad replacements are refused; the second certificate stays.
	c3, _ := g.ca.leaf(t)
	bad := []struct {
		name       string
		cert, key  []byte
		removeKey  bool
		wantErrSub string
	}{
		{name: "mismatched", cert: c3, key: k2, wantErrSub: "do not form a pair"},
		{name: "garbage cert", cert: []byte("not a certificate"), key: k2, wantErrSub: "no PEM CERTIFICATE"},
		{name: "truncated key", cert: c2, key: k2[:len(k2)/2], wantErrSub: "no PEM private key"},
		{name: "missing key", cert: c2, removeKey: true, wantErrSub: "no such file"},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			replaceFile(t, g.certF, tc.cert)
			if tc.removeKey {
				os.Remove(g.keyF)
			} else {
				replaceFile(t, g.keyF, tc.key)
			}
			err := g.mgr.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) || !strings.HasPrefix(err.Error(), "certs: ") {
				t.Fatalf("Reload error = %v, want one containing %q", err, tc.wantErrSub)
			}
			if got := g.served(t); got.SerialNumber.Cmp(second.SerialNumber) != 0 {
				t.Fatal("a bad pair replaced the certificate in use")
			}
			if v := metricValue(t, g.reg, "dualgate_certs_reload_total", "result", "error"); v != float64(i+1) {
				t.Errorf("reload error counter = %v, want %d", v, i+1)
			}
		})
	}
	echo("after bad reloads")
	if v := metricValue(t, g.reg, "dualgate_certs_reload_total", "result", "ok"); v != 1 {
		t.Errorf("reload ok counter = %v, want 1", v)
	}
	if v := metricValue(t, g.reg, "dualgate_certs_expiry_timestamp_seconds", "name", filesName); v != float64(second.NotAfter.Unix()) {
		t.Errorf("expiry gauge = %v, want %d", v, second.NotAfter.Unix())
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func TestFilesPollPicksUpChanges(t *testing.T) {
	g := startFilesGateway(t, 20*time.Millisecond)
	first := g.firstCertLeaf

	// Half an update (a new certificate, the old key) is refused by the
	// poller and the old certificate stays until the key follows.
	c2, k2 := g.ca.leaf(t)
	replaceFile(t, g.certF, c2)
	waitFor(t, "the poller to refuse a mismatched pair", func() bool {
		return metricValue(t, g.reg, "dualgate_certs_reload_total", "result", "error") >= 1
	})
	if got := g.served(t); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("a mismatched pair replaced the certificate in use")
	}
	replaceFile(t, g.keyF, k2)
	waitFor(t, "the poller to load the new pair", func() bool {
		return !bytes.Equal(g.served(t).Raw, first.Raw)
	})
	if v := metricValue(t, g.reg, "dualgate_certs_reload_total", "result", "error"); v != 1 {
		t.Errorf("a persisting error was counted %v times, want once", v)
	}
}

func TestFilesStartErrors(t *testing.T) {
	ca := newTestCA(t)
	c, k := ca.leaf(t)
	_, otherKey := ca.leaf(t)
	tests := []struct {
		name      string
		cert, key []byte
		maxSize   int64
		noFiles   bool
		want      string
	}{
		{name: "missing files", noFiles: true, want: "no such file"},
		{name: "mismatched", cert: c, key: otherKey, want: "do not form a pair"},
		{name: "empty", cert: nil, key: nil, want: "no PEM CERTIFICATE"},
		{name: "key in cert file", cert: k, key: k, want: "no PEM CERTIFICATE"},
		{name: "too large", cert: c, key: k, maxSize: 100, want: "larger than 100 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
			if !tc.noFiles {
				writeFile(t, cf, tc.cert)
				writeFile(t, kf, tc.key)
			}
			m, err := certs.New(context.Background(), &certs.Options{Mode: certs.ModeFiles, DataDir: dir, CertFile: cf, KeyFile: kf, MaxFileSize: tc.maxSize})
			if err == nil {
				m.Close()
				t.Fatal("New accepted an unusable pair")
			}
			if !strings.HasPrefix(err.Error(), "certs: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// testTransport dials every request to 127.0.0.1:port with cfg.
type testTransport struct {
	port int
	cfg  *tls.Config
	tr   *http.Transport
}

func (tt *testTransport) client() *http.Client {
	tt.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(tt.port))
		},
		TLSClientConfig: tt.cfg,
	}
	return &http.Client{Transport: tt.tr}
}

func (tt *testTransport) close() { tt.tr.CloseIdleConnections() }
