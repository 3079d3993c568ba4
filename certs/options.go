package certs

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
)

// Mode selects where the gateway's certificates come from.
type Mode int

// The certificate sources, in the order of the -tls flag's documentation.
const (
	// ModeDev is a local CA kept in the data directory that signs a leaf
	// for localhost, 127.0.0.1, ::1 and Options.DevNames. It is the default
	// because it needs no network and no operator.
	ModeDev Mode = iota
	// ModeFiles serves a PEM certificate and key from Options.CertFile and
	// Options.KeyFile, reloaded on Reload and when the files change.
	ModeFiles
	// ModeACME obtains and renews certificates with ACME (certmagic).
	ModeACME
	// ModeOff disables TLS: TLSConfig returns nil.
	ModeOff
)

var modeNames = [...]string{ModeDev: "dev", ModeFiles: "files", ModeACME: "acme", ModeOff: "off"}

// String returns the flag spelling of m ("dev", "files", "acme", "off").
func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseMode parses the value of the -tls flag. It is case-insensitive and
// ignores surrounding white space.
func ParseMode(s string) (Mode, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("certs: unknown TLS mode %q (want dev, files, acme or off)", s)
}

// Default values of Options fields.
const (
	DefaultPollInterval       = 5 * time.Second
	DefaultMaxFileSize        = 1 << 20
	DefaultDevLeafValidity    = 90 * 24 * time.Hour
	DefaultDevCAValidity      = 10 * 365 * 24 * time.Hour
	DefaultAskTimeout         = 5 * time.Second
	DefaultRenewCheckInterval = certmagic.DefaultRenewCheckInterval
	DefaultRenewalWindowRatio = certmagic.DefaultRenewalWindowRatio
	// DefaultACMECA is Let's Encrypt's production directory.
	DefaultACMECA = certmagic.LetsEncryptProductionCA
)

// OnDemand enables on-demand TLS in ACME mode: a certificate is obtained
// during the first handshake for a server name that is not in
// Options.Domains. Because any client can send any SNI, on-demand issuance
// is only allowed behind an allowlist or an "ask" URL; New refuses an
// OnDemand with neither.
type OnDemand struct {
	// Allowlist holds the names (lower case, no wildcard) that may be
	// obtained on demand.
	Allowlist []string
	// AskURL, if set, is asked before every on-demand issuance for a name
	// not in Allowlist: GET AskURL?domain=NAME; status 200 allows it,
	// anything else (or no answer within AskTimeout) refuses it. This is
	// the same contract as Caddy's on_demand_tls ask endpoint.
	AskURL string
	// AskTimeout bounds one ask request. Zero means DefaultAskTimeout.
	AskTimeout time.Duration
}

// Options configure a Manager. A nil *Options is the dev mode with all
// defaults (its data directory is then the current directory's
// "dualgate-data"). Options are copied by New and not retained.
type Options struct {
	// Mode selects the certificate source. The zero value is ModeDev.
	Mode Mode
	// DataDir holds the dev CA (dev/) and ACME state (acme/). Default
	// "dualgate-data". It is created with mode 0700 if missing.
	DataDir string

	// CertFile and KeyFile are the PEM certificate chain and private key
	// of files mode (required there).
	CertFile, KeyFile string
	// PollInterval is how often files mode re-reads the two files (a
	// change of their content triggers a reload) and dev mode checks that
	// its leaf is not near expiry. Zero means DefaultPollInterval; a
	// negative value disables polling (Reload still works).
	PollInterval time.Duration
	// MaxFileSize bounds every PEM file read. Zero means DefaultMaxFileSize.
	MaxFileSize int64

	// DevNames are extra DNS names or IP addresses for the dev leaf, on
	// top of localhost, 127.0.0.1 and ::1.
	DevNames []string
	// DevLeafValidity is the lifetime of a dev leaf; it is re-issued when
	// less than a third of it is left. Zero means DefaultDevLeafValidity.
	DevLeafValidity time.Duration

	// Domains are the names ACME mode obtains certificates for, eagerly,
	// at start-up.
	Domains []string
	// Email is the ACME account's contact address (optional but
	// recommended: CAs warn about expiring certificates by mail).
	Email string
	// CA is the ACME directory URL. Empty means DefaultACMECA.
	CA string
	// CARootsPEM holds extra root certificates (PEM) trusted when talking
	// to the ACME server, for private CAs such as Pebble or step-ca. They
	// are added to the system roots.
	CARootsPEM []byte
	// DisableHTTP01 and DisableTLSALPN01 turn one ACME challenge type off.
	// Both off is an error (DNS-01 is not offered).
	DisableHTTP01, DisableTLSALPN01 bool
	// Port is the TCP port of the gateway's own listener. certmagic would
	// bind the challenge ports (80 and 443) itself; with Port set as its
	// alternate port it finds the port taken by the gateway and relies on
	// HTTPChallengeHandler and TLSConfig instead. Required in ACME mode.
	// The gateway must bind its listener before calling New.
	Port int
	// ListenHost is the host part of the gateway's listen address, if it
	// is not the wildcard address (it helps certmagic see the port is in
	// use).
	ListenHost string
	// OnDemand, if non-nil, enables on-demand TLS (see OnDemand).
	OnDemand *OnDemand
	// RenewCheckInterval is how often certmagic checks for certificates
	// to renew. Zero means DefaultRenewCheckInterval (10 minutes).
	RenewCheckInterval time.Duration
	// RenewalWindowRatio is the fraction of a certificate's lifetime left
	// at which it is renewed. Zero means DefaultRenewalWindowRatio (1/3).
	RenewalWindowRatio float64
	// Storage replaces the ACME file storage in DataDir/acme. Gateways
	// that share one Storage (or one DataDir on a shared file system)
	// share accounts, certificates, locks and challenge tokens.
	Storage certmagic.Storage

	// Logger receives the package's logs, certmagic's included. Nil
	// means no logging.
	Logger *slog.Logger
	// Registerer receives the package's metrics. Nil means no metrics.
	Registerer prometheus.Registerer
}

// cloneWithDefaults returns a copy of o with every default filled in, or
// an error for an invalid combination.
func (o *Options) cloneWithDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	c.DevNames = slices.Clone(c.DevNames)
	c.Domains = normalizeNames(c.Domains)
	c.CARootsPEM = slices.Clone(c.CARootsPEM)
	if c.OnDemand != nil {
		od := *c.OnDemand
		od.Allowlist = normalizeNames(od.Allowlist)
		if od.AskTimeout <= 0 {
			od.AskTimeout = DefaultAskTimeout
		}
		c.OnDemand = &od
	}
	if c.DataDir == "" {
		c.DataDir = "dualgate-data"
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = DefaultMaxFileSize
	}
	if c.DevLeafValidity <= 0 {
		c.DevLeafValidity = DefaultDevLeafValidity
	}
	if c.CA == "" {
		c.CA = DefaultACMECA
	}
	if c.RenewCheckInterval <= 0 {
		c.RenewCheckInterval = DefaultRenewCheckInterval
	}
	if c.RenewalWindowRatio <= 0 {
		c.RenewalWindowRatio = DefaultRenewalWindowRatio
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch c.Mode {
	case ModeDev, ModeOff:
	case ModeFiles:
		if c.CertFile == "" || c.KeyFile == "" {
			return c, fmt.Errorf("certs: files mode needs both a certificate file and a key file")
		}
	case ModeACME:
		if len(c.Domains) == 0 && c.OnDemand == nil {
			return c, fmt.Errorf("certs: acme mode needs at least one domain (or on-demand TLS)")
		}
		for _, d := range c.Domains {
			if err := checkDomain(d); err != nil {
				return c, err
			}
		}
		if c.DisableHTTP01 && c.DisableTLSALPN01 {
			return c, fmt.Errorf("certs: acme mode with both HTTP-01 and TLS-ALPN-01 disabled cannot validate")
		}
		if c.Port <= 0 || c.Port > 65535 {
			return c, fmt.Errorf("certs: acme mode needs the gateway's port (got %d)", c.Port)
		}
		if u, err := url.Parse(c.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			return c, fmt.Errorf("certs: acme CA directory %q is not an https URL", c.CA)
		}
		if od := c.OnDemand; od != nil {
			if len(od.Allowlist) == 0 && od.AskURL == "" {
				return c, fmt.Errorf("certs: on-demand TLS needs an allowlist or an ask URL")
			}
			if od.AskURL != "" {
				if u, err := url.Parse(od.AskURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return c, fmt.Errorf("certs: on-demand ask URL %q is not an http(s) URL", od.AskURL)
				}
			}
		}
	default:
		return c, fmt.Errorf("certs: unknown mode %d", int(c.Mode))
	}
	return c, nil
}

// ParseNames splits a comma- or space-separated list of names (the
// -acme-domains flag) into lower-case names without duplicates, and checks
// each is a plausible DNS name for a certificate.
func ParseNames(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	names := normalizeNames(fields)
	for _, n := range names {
		if err := checkDomain(n); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func normalizeNames(in []string) []string {
	var out []string
	for _, n := range in {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkDomain rejects names no ACME CA would issue for, so that a typo in
// a flag fails at start-up rather than at the CA (and its rate limits).
func checkDomain(d string) error {
	if len(d) > 253 {
		return fmt.Errorf("certs: domain %.20q... is longer than 253 bytes", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("certs: domain %q is not a fully qualified name", d)
	}
	for i, l := range labels {
		if l == "*" && i == 0 {
			return fmt.Errorf("certs: wildcard %q needs the DNS-01 challenge, which the gateway does not offer", d)
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("certs: domain %q has an invalid label %q", d, l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("certs: domain %q has an invalid character %q", d, r)
			}
		}
	}
	return nil
}
