// Package certs implements the gateway's certificate sources: a local
// development CA, PEM files with hot reload, automatic ACME (RFC 8555) via
// certmagic, and "off".
//
// A Manager is built with New from Options and hands the TLS side of the
// one-port listener a *tls.Config whose GetCertificate always returns the
// current certificate, so reloads and renewals apply to new handshakes
// without touching established connections.
//
// # Modes
//
//   - dev (the default): a CA (ECDSA P-256, ten years) is created once in
//     DataDir/dev and signs a leaf for localhost, 127.0.0.1, ::1 and
//     Options.DevNames. The leaf is re-issued when its names change or a
//     third of its lifetime is left; its key is kept, so the SPKI hash
//     for Chromium's --ignore-certificate-errors-spki-list stays valid.
//     Info().Banner() says where the CA is and how to trust it.
//   - files: Options.CertFile and Options.KeyFile (PEM) are loaded at start,
//     on Reload (SIGHUP) and when their content changes (polled every
//     Options.PollInterval). A pair that cannot be read, parsed or matched
//     is refused with an error and the old certificate stays in use.
//   - acme: certmagic obtains and renews certificates for Options.Domains
//     from Options.CA, with state in DataDir/acme (or Options.Storage).
//     HTTP-01 is answered by HTTPChallengeHandler on the plain-HTTP side of
//     the port and TLS-ALPN-01 by GetCertificate on the TLS side (ALPN
//     acme-tls/1, RFC 8737); either can be disabled. On-demand issuance for
//     other names needs an allowlist or an ask URL.
//   - off: TLSConfig returns nil; the gateway refuses TLS connections and
//     logs ErrTLSDisabled.
//
// # One port for both ACME challenges
//
// The CA validates HTTP-01 on port 80 and TLS-ALPN-01 on port 443. Because
// the gateway sniffs each connection, one gateway port can answer both when
// 80 and 443 are forwarded to it (or it listens on them). certmagic would
// start its own challenge listeners; Options.Port is passed as its
// alternate challenge port, so it finds the port bound by the gateway and
// leaves the answers to HTTPChallengeHandler and GetCertificate. The
// gateway must therefore bind its listener before calling New.
//
// # Observability
//
// Logs go to Options.Logger (certmagic's zap logs are bridged into it).
// Metrics on Options.Registerer: dualgate_certs_expiry_timestamp_seconds
// {name}, dualgate_certs_obtain_total{mode,result},
// dualgate_certs_renew_total{mode,result}, dualgate_certs_reload_total
// {result} and dualgate_certs_on_demand_decisions_total{result}.
package certs
