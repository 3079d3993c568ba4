package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/certs"
)

func newDev(t *testing.T, dir string, names []string, validity time.Duration) (*certs.Manager, *prometheus.Registry) {
	t.Helper()
	log, _ := newTestLogger(t)
	reg := prometheus.NewRegistry()
	m, err := certs.New(context.Background(), &certs.Options{
		DataDir: dir, DevNames: names, DevLeafValidity: validity, Logger: log, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, reg
}

// caPool loads the dev CA from the file the banner names, as a user would.
func caPool(t *testing.T, file string) (*x509.CertPool, *x509.Certificate) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", file)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s is not PEM", file)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pool, ca
}

func TestDevCATrustedByGoClient(t *testing.T) {
	dir := t.TempDir()
	m, reg := newDev(t, dir, []string{"gw.dualgate.test", "10.11.12.13"}, 0)
	info := m.Info()
	if info.Mode != certs.ModeDev || info.CAFile != filepath.Join(dir, "dev", "ca.pem") {
		t.Fatalf("Info() = %+v", info)
	}
	for _, f := range []string{"ca-key.pem", "leaf-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, "dev", f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	pool, ca := caPool(t, info.CAFile)
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("dev CA: IsCA=%v algorithm=%v", ca.IsCA, ca.PublicKeyAlgorithm)
	}

	log, _ := newTestLogger(t)
	p := listenOnePort(t)
	p.serve(m.TLSConfig(), m.HTTPChallengeHandler, log)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "gw.dualgate.test", "10.11.12.13"} {
		chains := wssEcho(t, name, p.port(), &tls.Config{RootCAs: pool})
		leaf := chains[0][0]
		if got := certs.SPKIHash(leaf); got != info.SPKIHash {
			t.Errorf("%s: served SPKI hash %s, banner says %s", name, got, info.SPKIHash)
		}
	}
	// A name not on the leaf fails verification.
	_, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.port()), &tls.Config{RootCAs: pool, ServerName: "other.example.com"})
	if err == nil {
		t.Error("handshake for a name not on the dev leaf verified")
	}
	banner := strings.Join(info.Banner(), "\n")
	for _, want := range []string{info.CAFile, "--ignore-certificate-errors-spki-list=" + info.SPKIHash, "update-ca-certificates", "certutil"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if v := metricValue(t, reg, "dualgate_certs_obtain_total", "mode", "dev", "result", "ok"); v != 1 {
		t.Errorf("dev obtain counter = %v, want 1", v)
	}
	if v := metricValue(t, reg, "dualgate_certs_expiry_timestamp_seconds", "name", "gw.dualgate.test"); v != float64(info.NotAfter.Unix()) {
		t.Errorf("expiry gauge = %v, want %d", v, info.NotAfter.Unix())
	}
}

func TestDevCAPersistsAndLeafReissues(t *testing.T) {
	dir := t.TempDir()
	served := func(m *certs.Manager) *x509.Certificate {
		t.Helper()
		c, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	m1, _ := newDev(t, dir, nil, 2*time.Hour)
	ca1, _ := os.ReadFile(m1.Info().CAFile)
	leaf1 := served(m1)
	m1.Close()

	// Restart with the same settings: same CA, same leaf, nothing issued.
	m2, reg2 := newDev(t, dir, nil, 2*time.Hour)
	ca2, _ := os.ReadFile(m2.Info().CAFile)
	if string(ca1) != string(ca2) {
		t.Fatal("the dev CA changed across restarts")
	}
	if !served(m2).Equal(leaf1) {
		t.Error("the leaf was re-issued although nothing changed")
	}
	if v := metricValue(t, reg2, "dualgate_certs_obtain_total", "mode", "dev", "result", "ok"); v != 0 {
		t.Errorf("obtain counter = %v on a restart, want 0", v)
	}
	m2.Close()

	// New names: a new leaf from the same CA, with the same key (the SPKI
	// hash given to Chromium stays valid).
	m3, _ := newDev(t, dir, []string{"new.dualgate.test"}, 2*time.Hour)
	leaf3 := served(m3)
	if leaf3.Equal(leaf1) || !strings.Contains(strings.Join(leaf3.DNSNames, ","), "new.dualgate.test") {
		t.Errorf("leaf not re-issued for new names: %v", leaf3.DNSNames)
	}
	if certs.SPKIHash(leaf3) != certs.SPKIHash(leaf1) {
		t.Error("the SPKI hash changed with a re-issue")
	}
	m3.Close()

	// A longer configured lifetime makes the 2-hour leaf "near expiry":
	// it is re-issued at start.
	m4, _ := newDev(t, dir, []string{"new.dualgate.test"}, 10*time.Hour)
	leaf4 := served(m4)
	if leaf4.Equal(leaf3) || leaf4.NotAfter.Sub(leaf4.NotBefore) < 10*time.Hour {
		t.Errorf("near-expiry leaf not re-issued: lifetime %v", leaf4.NotAfter.Sub(leaf4.NotBefore))
	}
	if err := m4.Reload(); err != nil {
		t.Fatal(err)
	}
	if !served(m4).Equal(leaf4) {
		t.Error("Reload re-issued a fresh leaf")
	}
	m4.Close()

	// Half a CA is refused rather than silently replaced.
	if err := os.Remove(filepath.Join(dir, "dev", "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	_, err := certs.New(context.Background(), &certs.Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "dev CA key") {
		t.Fatalf("New with a missing CA key: %v", err)
	}
}

func TestOffModeRefusesTLS(t *testing.T) {
	log, logs := newTestLogger(t)
	m, err := certs.New(context.Background(), &certs.Options{Mode: certs.ModeOff, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.TLSConfig() != nil {
		t.Fatal("off mode returned a TLS config")
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	p := listenOnePort(t)
	p.serve(nil, m.HTTPChallengeHandler, log)
	addr := "127.0.0.1:" + strconv.Itoa(p.port())
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake succeeded in off mode")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "hello") {
		t.Errorf("plain HTTP in off mode: %q", b)
	}
	http.DefaultClient.CloseIdleConnections()
	if p.tlsOff.Load() != 1 || !strings.Contains(logs.String(), "TLS is off") {
		t.Errorf("refusals %d, logs:\n%s", p.tlsOff.Load(), logs.String())
	}
	if !strings.Contains(strings.Join(m.Info().Banner(), "\n"), "off") {
		t.Errorf("banner: %q", m.Info().Banner())
	}
}

// TestDevLeafRenewedWhileRunning gives the dev leaf a 3-second lifetime:
// the poller re-issues it (same key, same SPKI hash) before it expires,
// and new handshakes get the new leaf.
func TestDevLeafRenewedWhileRunning(t *testing.T) {
	log, _ := newTestLogger(t)
	reg := prometheus.NewRegistry()
	m, err := certs.New(context.Background(), &certs.Options{
		DataDir: t.TempDir(), DevLeafValidity: 3 * time.Second, PollInterval: 50 * time.Millisecond,
		Logger: log, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	get := m.TLSConfig().GetCertificate
	first, err := get(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dev leaf to be re-issued", func() bool {
		return metricValue(t, reg, "dualgate_certs_renew_total", "mode", "dev", "result", "ok") >= 1
	})
	second, err := get(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Leaf.Equal(first.Leaf) || !second.Leaf.NotAfter.After(first.Leaf.NotAfter) {
		t.Fatalf("leaf not replaced: %v → %v", first.Leaf.NotAfter, second.Leaf.NotAfter)
	}
	if certs.SPKIHash(second.Leaf) != certs.SPKIHash(first.Leaf) || m.Info().SPKIHash != certs.SPKIHash(second.Leaf) {
		t.Error("the SPKI hash changed with the re-issue")
	}
}
