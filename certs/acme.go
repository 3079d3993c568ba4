package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// acmeDir is the ACME file storage inside DataDir.
const acmeDir = "acme"

// acmeState is ACME mode's certmagic machinery, built per Manager: no
// certmagic package-level default is used or changed.
type acmeState struct {
	cache   *certmagic.Cache
	cfg     *certmagic.Config     // Options.Domains, managed eagerly
	od      *certmagic.Config     // on-demand names; nil without Options.OnDemand
	issuer  *certmagic.ACMEIssuer // cfg's issuer; answers HTTP-01 for both configs
	domains []string
}

func (m *Manager) startACME(bg context.Context) error {
	o := &m.opts
	storage := o.Storage
	if storage == nil {
		storage = &certmagic.FileStorage{Path: filepath.Join(o.DataDir, acmeDir)}
	}
	var roots *x509.CertPool
	if len(o.CARootsPEM) > 0 {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(o.CARootsPEM) {
			return errors.New("certs: the ACME CA roots PEM holds no certificate")
		}
	}
	zl := newZapLogger(m.log.With("logger", "certmagic"))
	a := &acmeState{domains: o.Domains}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   a.configForCert,
		RenewCheckInterval: o.RenewCheckInterval,
		Logger:             zl,
	})
	newConfig := func(od *certmagic.OnDemandConfig) (*certmagic.Config, *certmagic.ACMEIssuer) {
		cfg := certmagic.New(a.cache, certmagic.Config{
			Storage:            storage,
			Logger:             zl,
			OnEvent:            m.onACMEEvent,
			RenewalWindowRatio: o.RenewalWindowRatio,
			OnDemand:           od,
		})
		iss := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
			CA:     o.CA,
			Email:  o.Email,
			Agreed: true, // running ACME mode is the operator's agreement, as in Caddy
			// The gateway's one port answers both challenges: certmagic's
			// solvers try to bind it, find it taken and rely on
			// HTTPChallengeHandler and GetCertificate instead.
			DisableHTTPChallenge:    o.DisableHTTP01,
			DisableTLSALPNChallenge: o.DisableTLSALPN01,
			ListenHost:              o.ListenHost,
			AltHTTPPort:             o.Port,
			AltTLSALPNPort:          o.Port,
			TrustedRoots:            roots,
			Logger:                  zl,
		})
		cfg.Issuers = []certmagic.Issuer{iss}
		return cfg, iss
	}
	a.cfg, a.issuer = newConfig(nil)
	if o.OnDemand != nil {
		a.od, _ = newConfig(&certmagic.OnDemandConfig{DecisionFunc: m.onDemandDecision})
	}
	m.acme = a
	m.info.Names = slices.Clone(o.Domains)
	if len(o.Domains) > 0 {
		// ManageAsync returns at once; obtaining (with certmagic's retries
		// and back-off) and renewal run until Close cancels bg.
		if err := a.cfg.ManageAsync(bg, o.Domains); err != nil {
			return fmt.Errorf("certs: managing %v: %w", o.Domains, err)
		}
	}
	m.log.Info("ACME certificate management started", "domains", o.Domains, "ca", o.CA,
		"http01", !o.DisableHTTP01, "tlsalpn01", !o.DisableTLSALPN01, "port", o.Port,
		"on_demand", o.OnDemand != nil, "renew_check_interval", o.RenewCheckInterval)
	return nil
}

// configForCert picks the config that manages a cached certificate.
func (a *acmeState) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	if a.od == nil || slices.ContainsFunc(c.Names, a.isDomain) {
		return a.cfg, nil
	}
	return a.od, nil
}

func (a *acmeState) isDomain(name string) bool {
	return slices.Contains(a.domains, strings.ToLower(name))
}

func (a *acmeState) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if a.od != nil && !a.isDomain(strings.TrimSuffix(hello.ServerName, ".")) {
		return a.od.GetCertificate(hello)
	}
	return a.cfg.GetCertificate(hello)
}

func (a *acmeState) stop() {
	a.cache.Stop()
}

// onDemandDecision allows on-demand issuance for name if it is on the
// allowlist or the ask URL answers 200.
func (m *Manager) onDemandDecision(ctx context.Context, name string) (err error) {
	defer func() {
		r := "allowed"
		if err != nil {
			r = "denied"
			m.log.Warn("on-demand certificate refused", "name", name, "err", err)
		}
		m.met.onDemand.WithLabelValues(r).Inc()
	}()
	od := m.opts.OnDemand
	if slices.Contains(od.Allowlist, strings.ToLower(name)) {
		return nil
	}
	if od.AskURL == "" {
		return fmt.Errorf("certs: %q is not on the on-demand allowlist", name)
	}
	u, _ := url.Parse(od.AskURL) // validated in cloneWithDefaults
	q := u.Query()
	q.Set("domain", name)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, od.AskTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("certs: on-demand ask: %w", err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("certs: on-demand ask for %q: %w", name, err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("certs: on-demand ask for %q answered %s", name, resp.Status)
	}
	return nil
}

// onACMEEvent turns certmagic's events into metrics and the expiry gauge.
// It never returns an error: an error would abort certmagic's operation.
func (m *Manager) onACMEEvent(ctx context.Context, event string, data map[string]any) error {
	mode := ModeACME.String()
	switch event {
	case "cert_obtained":
		renewal, _ := data["renewal"].(bool)
		if renewal {
			m.met.renew.WithLabelValues(mode, "ok").Inc()
		} else {
			m.met.obtain.WithLabelValues(mode, "ok").Inc()
		}
		if p, ok := data["certificate_path"].(string); ok && m.acme != nil {
			if b, err := m.acme.cfg.Storage.Load(ctx, p); err == nil {
				if leaf, err := parseCertPEM(b); err == nil {
					m.met.setExpiry(leaf)
					m.log.Info("ACME certificate obtained", "renewal", renewal, "names", leafNames(leaf),
						"not_after", leaf.NotAfter.UTC(), "expires_in", until(leaf.NotAfter))
				}
			}
		}
	case "cert_failed":
		renewal, _ := data["renewal"].(bool)
		if renewal {
			m.met.renew.WithLabelValues(mode, "error").Inc()
		} else {
			m.met.obtain.WithLabelValues(mode, "error").Inc()
		}
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		if m.acme == nil || len(sans) == 0 {
			return nil
		}
		var newest *x509.Certificate
		for _, c := range m.acme.cache.AllMatchingCertificates(sans[0]) {
			if c.Leaf != nil && (newest == nil || c.Leaf.NotAfter.After(newest.NotAfter)) {
				newest = c.Leaf
			}
		}
		m.met.setExpiry(newest)
	}
	return nil
}

// ObtainedNames returns, for each of Options.Domains that currently has an
// ACME certificate in the cache, that certificate's expiry (on-demand names
// are not listed); nil outside ACME mode. The gateway can use it for
// readiness: a domain missing from the map has no certificate yet.
func (m *Manager) ObtainedNames() map[string]time.Time {
	if m.acme == nil {
		return nil
	}
	out := make(map[string]time.Time)
	for _, d := range m.acme.domains {
		for _, c := range m.acme.cache.AllMatchingCertificates(d) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(out[d]) {
				out[d] = c.Leaf.NotAfter
			}
		}
	}
	return out
}
