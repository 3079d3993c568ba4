package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/certs"
	"github.com/dualgate/dualgate/internal/testenv"
)

type acmeCase struct {
	name          string
	domain        string
	http01, alpn  bool
	validity      time.Duration // Pebble's certificate lifetime; 0 = its default
	windowRatio   float64
	renewInterval time.Duration
}

// acmeGateway is a gateway port with an ACME Manager against a real Pebble.
type acmeGateway struct {
	port  *onePort
	peb   *pebbleServer
	mgr   *certs.Manager
	reg   *prometheus.Registry
	roots *x509.CertPool
	dir   string
}

func startACMEGateway(t *testing.T, c acmeCase) *acmeGateway {
	t.Helper()
	p := listenOnePort(t) // bound before certs.New, as the gateway must
	peb := startPebble(t, p.port(), c.validity)
	log, _ := newTestLogger(t)
	reg := prometheus.NewRegistry()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	mgr, err := certs.New(ctx, &certs.Options{
		Mode:               certs.ModeACME,
		DataDir:            dir,
		Domains:            []string{c.domain},
		Email:              "ops@example.com",
		CA:                 peb.dirURL,
		CARootsPEM:         peb.apiRootPEM,
		DisableHTTP01:      !c.http01,
		DisableTLSALPN01:   !c.alpn,
		Port:               p.port(),
		ListenHost:         "127.0.0.1",
		RenewalWindowRatio: c.windowRatio,
		RenewCheckInterval: c.renewInterval,
		Logger:             log,
		Registerer:         reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	p.serve(mgr.TLSConfig(), mgr.HTTPChallengeHandler, log)
	waitFor(t, "the ACME certificate for "+c.domain, func() bool {
		return !mgr.ObtainedNames()[c.domain].IsZero()
	})
	return &acmeGateway{port: p, peb: peb, mgr: mgr, reg: reg, roots: peb.issuingRoots(t), dir: dir}
}

// servedLeaf handshakes with the gateway as name, verifying against
// Pebble's root, and returns the leaf it served.
func (g *acmeGateway) servedLeaf(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(g.port.port()),
		&tls.Config{RootCAs: g.roots, ServerName: name, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS to %s: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestACMEPebbleHTTP01Only(t *testing.T) {
	c := acmeCase{name: "http01", domain: "http01.dualgate.example.com", http01: true}
	g := startACMEGateway(t, c)
	checkObtained(t, g, c)
	if n := g.port.httpSeen.Load(); n == 0 {
		t.Errorf("no HTTP-01 request reached the plain side of the port")
	}
	if n := g.port.alpnSeen(t); n != 0 {
		t.Errorf("%d acme-tls/1 handshakes although TLS-ALPN-01 is disabled", n)
	}

}

func TestACMEPebbleTLSALPN01Only(t *testing.T) {
	c := acmeCase{name: "tlsalpn01", domain: "alpn.dualgate.example.com", alpn: true}
	g := startACMEGateway(t, c)
	checkObtained(t, g, c)
	if n := g.port.alpnSeen(t); n == 0 {
		t.Errorf("no acme-tls/1 handshake reached the TLS side of the port")
	}
	if n := g.port.httpSeen.Load(); n != 0 {
		t.Errorf("%d HTTP-01 requests although HTTP-01 is disabled", n)
	}
}

// TestACMEPebbleRenewalShortLived has Pebble issue 30-second certificates
// and lets certmagic's background maintenance renew them on its own.
func TestACMEPebbleRenewalShortLived(t *testing.T) {
	c := acmeCase{name: "renewal", domain: "renew.dualgate.example.com", http01: true, alpn: true,
		validity: 30 * time.Second, windowRatio: 0.8, renewInterval: time.Second}
	g := startACMEGateway(t, c)
	first := g.servedLeaf(t, c.domain)
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("pebble issued a %v certificate, want a short-lived one", life)
	}
	waitFor(t, "a background renewal", func() bool {
		return metricValue(t, g.reg, "dualgate_certs_renew_total", "mode", "acme", "result", "ok") >= 1
	})
	waitFor(t, "the renewed certificate to be served", func() bool {
		return g.servedLeaf(t, c.domain).SerialNumber.Cmp(first.SerialNumber) != 0
	})
	renewed := g.servedLeaf(t, c.domain)
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after the first one's %v", renewed.NotAfter, first.NotAfter)
	}
	wssEcho(t, c.domain, g.port.port(), &tls.Config{RootCAs: g.roots})
}

func checkObtained(t *testing.T, g *acmeGateway, c acmeCase) {
	t.Helper()
	chains := wssEcho(t, c.domain, g.port.port(), &tls.Config{RootCAs: g.roots})
	leaf := chains[0][0]
	if !slices.Contains(leaf.DNSNames, c.domain) {
		t.Errorf("leaf names %v, want %s", leaf.DNSNames, c.domain)
	}
	if root := chains[0][len(chains[0])-1]; !strings.Contains(root.Subject.CommonName, "Pebble") {
		t.Errorf("chain ends in %q, want Pebble's root", root.Subject.CommonName)
	}
	if v := metricValue(t, g.reg, "dualgate_certs_obtain_total", "mode", "acme", "result", "ok"); v != 1 {
		t.Errorf("obtain counter = %v, want 1", v)
	}
	waitFor(t, "the expiry gauge", func() bool {
		return metricValue(t, g.reg, "dualgate_certs_expiry_timestamp_seconds", "name", c.domain) >= float64(leaf.NotAfter.Unix())
	})
	// The certificate and the account live in the data directory.
	var crts int
	filepath.WalkDir(filepath.Join(g.dir, "acme"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, c.domain+".crt") {
			crts++
		}
		return nil
	})
	if crts == 0 {
		t.Errorf("no %s.crt under %s/acme", c.domain, g.dir)
	}
	info := g.mgr.Info()
	if info.Mode != certs.ModeACME || !slices.Contains(info.Names, c.domain) {
		t.Errorf("Info() = %+v", info)
	}
}

// metricValue returns the value of the metric name with the given label
// pairs, or 0 if it has not been created.
func metricValue(tb testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	tb.Helper()
	return testenv.MetricValue(tb, g, name, labels...)
}

// TestACMEPebbleOnDemand obtains certificates during the first handshake
// for names that are allowed by the allowlist or by the ask URL, and
// refuses any other name without contacting the CA.
func TestACMEPebbleOnDemand(t *testing.T) {
	p := listenOnePort(t)
	peb := startPebble(t, p.port(), 0)
	log, _ := newTestLogger(t)
	reg := prometheus.NewRegistry()
	var asked []string
	var askMu sync.Mutex
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		askMu.Lock()
		asked = append(asked, d)
		askMu.Unlock()
		if d != "asked.dualgate.example.com" {
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	defer ask.Close()
	mgr, err := certs.New(context.Background(), &certs.Options{
		Mode: certs.ModeACME, DataDir: t.TempDir(), Email: "ops@example.com",
		CA: peb.dirURL, CARootsPEM: peb.apiRootPEM, Port: p.port(), ListenHost: "127.0.0.1",
		OnDemand: &certs.OnDemand{Allowlist: []string{"listed.dualgate.example.com"}, AskURL: ask.URL + "/check"},
		Logger:   log, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	p.serve(mgr.TLSConfig(), mgr.HTTPChallengeHandler, log)
	roots := peb.issuingRoots(t)

	for _, name := range []string{"listed.dualgate.example.com", "asked.dualgate.example.com"} {
		chains := wssEcho(t, name, p.port(), &tls.Config{RootCAs: roots})
		if !slices.Contains(chains[0][0].DNSNames, name) {
			t.Errorf("%s: served %v", name, chains[0][0].DNSNames)
		}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", "127.0.0.1:"+strconv.Itoa(p.port()),
		&tls.Config{RootCAs: roots, ServerName: "denied.dualgate.example.com"})
	if err == nil {
		c.Close()
		t.Fatal("on-demand certificate served for a name neither listed nor allowed by the ask URL")
	}
	if v := metricValue(t, reg, "dualgate_certs_on_demand_decisions_total", "result", "denied"); v < 1 {
		t.Errorf("denied decisions = %v", v)
	}
	if v := metricValue(t, reg, "dualgate_certs_obtain_total", "mode", "acme", "result", "ok"); v != 2 {
		t.Errorf("obtain counter = %v, want 2", v)
	}
	askMu.Lock()
	defer askMu.Unlock()
	if slices.Contains(asked, "listed.dualgate.example.com") || !slices.Contains(asked, "denied.dualgate.example.com") {
		t.Errorf("ask URL consulted for %q", asked)
	}
}

// TestACMEPebbleFailureIsCounted points Pebble's validation at a port
// where nobody listens: the order fails, the failure is logged and
// counted, and no certificate is served.
func TestACMEPebbleFailureIsCounted(t *testing.T) {
	p := listenOnePort(t)
	peb := startPebble(t, freePort(t), 0)
	log, logs := newTestLogger(t)
	reg := prometheus.NewRegistry()
	mgr, err := certs.New(context.Background(), &certs.Options{
		Mode: certs.ModeACME, DataDir: t.TempDir(), Domains: []string{"fail.dualgate.example.com"},
		CA: peb.dirURL, CARootsPEM: peb.apiRootPEM, DisableTLSALPN01: true,
		Port: p.port(), ListenHost: "127.0.0.1", Logger: log, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	p.serve(mgr.TLSConfig(), mgr.HTTPChallengeHandler, log)
	waitFor(t, "the failed obtain to be counted", func() bool {
		return metricValue(t, reg, "dualgate_certs_obtain_total", "mode", "acme", "result", "error") >= 1
	})
	if len(mgr.ObtainedNames()) != 0 {
		t.Errorf("ObtainedNames after a failure: %v", mgr.ObtainedNames())
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Error("the failure was not logged at error level")
	}
}
