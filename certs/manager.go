package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTLSDisabled is the reason to log when the gateway refuses a TLS
// connection in off mode (TLSConfig returns nil there).
var ErrTLSDisabled = errors.New("certs: TLS is off (-tls off): plain ws:// only")

// ALPN protocol names offered by TLSConfig.
const (
	ALPNHTTP1   = "http/1.1"
	ALPNACMETLS = "acme-tls/1" // RFC 8737
)

// Manager supplies the gateway's certificates from one source (see Mode).
// Build it with New; the zero value is not usable. All methods are safe
// for concurrent use. Close stops its background work.
type Manager struct {
	opts Options
	log  *slog.Logger
	met  *metrics
	info Info

	// cur is the certificate served in dev and files mode. Handshakes
	// load it without a lock; a reload swaps it, so connections already
	// established keep the certificate they were handshaken with.
	cur atomic.Pointer[tls.Certificate]

	// reloadMu serialises Reload, the poller and the dev re-issue.
	reloadMu sync.Mutex
	files    fileState // guarded by reloadMu
	dev      *devCA    // guarded by reloadMu (nil outside dev mode)

	acme *acmeState // nil outside ACME mode

	cancel    context.CancelFunc
	wg        sync.WaitGroup // background goroutines started by New
	closeOnce sync.Once
}

// New builds the Manager for opts.Mode. In dev mode it loads or creates
// the local CA and leaf; in files mode it loads the pair (an unusable pair
// is an error); in ACME mode it starts obtaining Options.Domains in the
// background (the gateway's listener must already be bound, see
// Options.Port). ctx bounds only the work New does before returning;
// background work lasts until Close.
func New(ctx context.Context, opts *Options) (*Manager, error) {
	o, err := opts.cloneWithDefaults()
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("certs: registering metrics: %w", err)
	}
	m := &Manager{opts: o, log: o.Logger.With("component", "certs", "mode", o.Mode.String()), met: met}
	m.info.Mode = o.Mode
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.start(ctx, bg); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Manager) start(ctx, bg context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if m.opts.Mode != ModeOff {
		if err := os.MkdirAll(m.opts.DataDir, 0o700); err != nil {
			return fmt.Errorf("certs: data directory: %w", err)
		}
	}
	switch m.opts.Mode {
	case ModeOff:
		m.log.Info("TLS is off; TLS connections will be refused")
		return nil
	case ModeDev:
		if err := m.startDev(); err != nil {
			return err
		}
	case ModeFiles:
		if err := m.startFiles(); err != nil {
			return err
		}
	case ModeACME:
		return m.startACME(bg)
	}
	if m.opts.PollInterval > 0 {
		m.wg.Add(1)
		go m.routinePoll(bg)
	}
	return nil
}

// routinePoll re-checks the files (files mode) or the leaf's expiry (dev
// mode) every PollInterval until Close.
func (m *Manager) routinePoll(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.reloadMu.Lock()
		switch m.opts.Mode {
		case ModeFiles:
			_, _ = m.reloadFilesLocked(false)
		case ModeDev:
			_ = m.ensureDevLeafLocked()
		}
		m.reloadMu.Unlock()
	}
}

// TLSConfig returns the server configuration for tlsmux, or nil in off
// mode (log ErrTLSDisabled and close TLS connections then). Certificates
// come from GetCertificate, so renewals and reloads apply to new
// handshakes without a new config. ALPN offers http/1.1, plus acme-tls/1
// in ACME mode with TLS-ALPN-01 enabled (never h2: the gateway serves
// HTTP/1.1 WebSockets). Each call returns a new *tls.Config.
func (m *Manager) TLSConfig() *tls.Config {
	if m.opts.Mode == ModeOff {
		return nil
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{ALPNHTTP1},
	}
	if m.acme != nil {
		cfg.GetCertificate = m.acme.getCertificate
		if !m.opts.DisableTLSALPN01 {
			cfg.NextProtos = append(cfg.NextProtos, ALPNACMETLS)
		}
		return cfg
	}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c := m.cur.Load()
		if c == nil {
			return nil, errors.New("certs: no certificate loaded")
		}
		return c, nil
	}
	return cfg
}

// HTTPChallengeHandler wraps next, the plain-HTTP side's handler, so that
// ACME HTTP-01 requests (/.well-known/acme-challenge/...) are answered in
// ACME mode; everything else, and every request in other modes, goes to
// next.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	if m.acme == nil || m.opts.DisableHTTP01 {
		return next
	}
	return m.acme.issuer.HTTPChallengeHandler(next)
}

// Reload re-reads the certificate source, for SIGHUP: files mode reloads
// the pair (on error the old certificate stays and the error says why);
// dev mode re-issues the leaf if it is near expiry; ACME mode has nothing
// to reload (certmagic renews on its own) and returns nil.
func (m *Manager) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	switch m.opts.Mode {
	case ModeFiles:
		_, err := m.reloadFilesLocked(true)
		return err
	case ModeDev:
		return m.ensureDevLeafLocked()
	case ModeACME:
		m.log.Info("reload: ACME certificates are renewed automatically; nothing to reload")
	}
	return nil
}

// Close stops the background work (polling, ACME maintenance; an ACME
// operation in flight is cancelled) and unregisters the metrics. It is
// idempotent. Connections keep working; new handshakes still get the last
// certificate.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.wg.Wait()
		if m.acme != nil {
			m.acme.stop()
		}
		m.met.unregister(m.opts.Registerer)
	})
	return nil
}

// Info describes the certificate source for the start-up banner.
type Info struct {
	// Mode is the certificate source.
	Mode Mode
	// Names are the names certificates are served for (dev leaf names,
	// the files leaf's names, or the ACME domains).
	Names []string
	// CAFile is the dev CA certificate (dev mode), to import into trust
	// stores.
	CAFile string
	// SPKIHash is the base64 SHA-256 of the served leaf's public key (dev
	// and files mode), for Chromium's --ignore-certificate-errors-spki-list.
	// The dev leaf keeps its key across re-issues, so the hash is stable.
	SPKIHash string
	// NotAfter is the served leaf's expiry (dev and files mode).
	NotAfter time.Time
}

// Info returns the description of the current certificate source.
func (m *Manager) Info() Info {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	i := m.info
	i.Names = append([]string(nil), i.Names...)
	return i
}

// Banner returns the lines the gateway prints at start-up: where the
// certificate comes from and, in dev mode, how to trust the CA.
func (i Info) Banner() []string {
	var l []string
	switch i.Mode {
	case ModeOff:
		l = append(l, "TLS: off (-tls off); wss:// is refused, use ws://")
	case ModeACME:
		l = append(l, "TLS: ACME certificates for "+strings.Join(i.Names, ", "))
	case ModeFiles:
		l = append(l, fmt.Sprintf("TLS: certificate files for %s (expires %s)", strings.Join(i.Names, ", "), i.NotAfter.UTC().Format(time.RFC3339)))
	case ModeDev:
		l = append(l,
			"TLS: development CA for "+strings.Join(i.Names, ", "),
			"  CA certificate: "+i.CAFile,
			"  trust it (Debian/Ubuntu): sudo cp "+i.CAFile+" /usr/local/share/ca-certificates/dualgate-dev.crt && sudo update-ca-certificates",
			"  trust it (Chromium/Firefox NSS): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n dualgate-dev -i "+i.CAFile,
			"  or start Chromium with --ignore-certificate-errors-spki-list="+i.SPKIHash,
		)
	}
	return l
}
