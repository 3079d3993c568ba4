package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files of the dev CA inside DataDir.
const (
	devDir         = "dev"
	devCAFile      = "ca.pem"
	devCAKeyFile   = "ca-key.pem"
	devLeafFile    = "leaf.pem"
	devLeafKeyFile = "leaf-key.pem"
)

// devCA is the local development CA and the key of its leaf. Both keys
// live in DataDir/dev with mode 0600. The leaf key is kept across
// re-issues so that the SPKI hash given to Chromium stays valid.
type devCA struct {
	dir     string
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	leafKey *ecdsa.PrivateKey
}

// devNames returns the names of the dev leaf: the defaults plus extra.
func devNames(extra []string) []string {
	return normalizeNames(append([]string{"localhost", "127.0.0.1", "::1"}, extra...))
}

func (m *Manager) startDev() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	dir := filepath.Join(m.opts.DataDir, devDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: dev CA directory: %w", err)
	}
	ca, err := loadOrCreateDevCA(dir, m.log)
	if err != nil {
		return err
	}
	m.dev = ca
	m.info.CAFile = filepath.Join(dir, devCAFile)
	return m.ensureDevLeafLocked()
}

// loadOrCreateDevCA loads the CA from dir, or creates it when neither of
// its files exists. Half a CA is an error: silently replacing a CA that
// users may have trusted would break them.
func loadOrCreateDevCA(dir string, log *slog.Logger) (*devCA, error) {
	d := &devCA{dir: dir}
	certPath, keyPath := filepath.Join(dir, devCAFile), filepath.Join(dir, devCAKeyFile)
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	switch {
	case errors.Is(errC, fs.ErrNotExist) && errors.Is(errK, fs.ErrNotExist):
		if err := d.create(); err != nil {
			return nil, err
		}
		log.Info("created development CA", "ca_file", certPath, "not_after", d.cert.NotAfter.UTC())
	case errC != nil:
		return nil, fmt.Errorf("certs: dev CA certificate: %w", errC)
	case errK != nil:
		return nil, fmt.Errorf("certs: dev CA key (remove %s to start a new CA): %w", dir, errK)
	default:
		cert, err := parseCertPEM(certPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: dev CA %s: %w", certPath, err)
		}
		key, err := parseECKeyPEM(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: dev CA %s: %w", keyPath, err)
		}
		if st, err := os.Stat(keyPath); err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn("dev CA key is readable by other users; anyone who can read it can impersonate any site to machines trusting this CA",
				"key_file", keyPath, "mode", st.Mode().Perm().String())
		}
		if !key.PublicKey.Equal(cert.PublicKey) {
			return nil, fmt.Errorf("certs: dev CA key %s does not belong to %s", keyPath, certPath)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("certs: dev CA %s is not a CA certificate", certPath)
		}
		if time.Now().After(cert.NotAfter) {
			return nil, fmt.Errorf("certs: dev CA %s expired on %s (remove %s to start a new CA)", certPath, cert.NotAfter.UTC(), dir)
		}
		d.cert, d.key = cert, key
	}
	// The leaf key is independent of the CA; a missing or broken one is
	// simply replaced (the leaf is re-issued for it).
	if b, err := os.ReadFile(filepath.Join(dir, devLeafKeyFile)); err == nil {
		d.leafKey, _ = parseECKeyPEM(b)
	}
	if d.leafKey == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("certs: generating dev leaf key: %w", err)
		}
		b, err := encodeKeyPEM(k)
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(dir, devLeafKeyFile), b, 0o600); err != nil {
			return nil, err
		}
		d.leafKey = k
	}
	return d, nil
}

func (d *devCA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: generating dev CA key: %w", err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Organization: []string{"Dualgate development CA"},
			CommonName:   fmt.Sprintf("Dualgate dev CA %s %s", host, now.UTC().Format("2006-01-02T15:04")),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(DefaultDevCAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certs: creating dev CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return err
	}
	// Key first: a crash between the two writes leaves no CA certificate
	// without its key.
	if err := writeFileAtomic(filepath.Join(d.dir, devCAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(d.dir, devCAFile), encodeCertPEM(der), 0o644); err != nil {
		return err
	}
	d.cert, d.key = cert, key
	return nil
}

// ensureDevLeafLocked loads the stored leaf and re-issues it when it is
// missing, not from this CA or key, for other names, or has less than a
// third of its lifetime left. The caller must hold m.reloadMu.
func (m *Manager) ensureDevLeafLocked() error {
	d := m.dev
	names := devNames(m.opts.DevNames)
	leafPath := filepath.Join(d.dir, devLeafFile)
	var leaf *x509.Certificate
	reason := "missing"
	if b, err := os.ReadFile(leafPath); err == nil {
		if c, err := parseCertPEM(b); err == nil {
			leaf = c
			reason = d.leafProblem(c, names, m.opts.DevLeafValidity)
		} else {
			reason = "unreadable"
		}
	}
	renewal := m.cur.Load() != nil
	if reason != "" {
		// Count the outcome only once it is in effect: a success is
		// counted after the new leaf is served (below), so that whoever
		// watches the counter sees the new certificate.
		c, err := d.issueLeaf(names, m.opts.DevLeafValidity)
		if err == nil {
			err = writeFileAtomic(leafPath, encodeCertPEM(c.Raw), 0o644)
		}
		if err != nil {
			m.countDevIssue(renewal, err)
			if renewal {
				m.log.Error("re-issuing dev leaf failed; keeping the current one", "err", err)
			}
			return err
		}
		m.log.Info("issued dev leaf certificate", "reason", reason, "names", names, "not_after", c.NotAfter.UTC())
		leaf = c
		defer m.countDevIssue(renewal, nil)
	} else if renewal && m.cur.Load().Leaf.Equal(leaf) {
		return nil
	}
	m.cur.Store(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: d.leafKey, Leaf: leaf})
	m.info.Names = leafNames(leaf)
	m.info.SPKIHash = SPKIHash(leaf)
	m.info.NotAfter = leaf.NotAfter
	m.met.setExpiry(leaf)
	return nil
}

// countDevIssue counts one issue of the dev leaf: a renewal when a leaf was
// already served, else the first obtain.
func (m *Manager) countDevIssue(renewal bool, err error) {
	mode := ModeDev.String()
	if renewal {
		m.met.renew.WithLabelValues(mode, result(err)).Inc()
	} else {
		m.met.obtain.WithLabelValues(mode, result(err)).Inc()
	}
}

// leafProblem returns why leaf must be re-issued, or "".
func (d *devCA) leafProblem(leaf *x509.Certificate, names []string, validity time.Duration) string {
	if leaf.CheckSignatureFrom(d.cert) != nil {
		return "not signed by the current CA"
	}
	if !d.leafKey.PublicKey.Equal(leaf.PublicKey) {
		return "key changed"
	}
	have := leafNames(leaf)
	if len(have) != len(names) {
		return "names changed"
	}
	for _, n := range names {
		if !slices.Contains(have, canonicalName(n)) {
			return "names changed"
		}
	}
	if time.Until(leaf.NotAfter) < validity/3 {
		return "near expiry"
	}
	return ""
}

func (d *devCA) issueLeaf(names []string, validity time.Duration) (*x509.Certificate, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"Dualgate development"}, CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(d.cert.NotAfter) {
		tmpl.NotAfter = d.cert.NotAfter
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, d.cert, &d.leafKey.PublicKey, d.key)
	if err != nil {
		return nil, fmt.Errorf("certs: issuing dev leaf: %w", err)
	}
	return x509.ParseCertificate(der)
}

// leafNames lists a certificate's DNS and IP names in canonical form.
func leafNames(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, canonicalName(ip.String()))
	}
	return out
}

// canonicalName writes IP addresses the way netip does (so "::1" and
// "0:0::1" compare equal) and leaves DNS names alone.
func canonicalName(n string) string {
	if ip, err := netip.ParseAddr(n); err == nil {
		return ip.Unmap().String()
	}
	return n
}

func randomSerial() *big.Int {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return s.Add(s, big.NewInt(1))
}
