// Command gateway runs Dualgate: ws:// and wss:// (and the resumable byte
// stream over tcp:// and tls://) on one TCP port, each resumable session
// bridged to the upstream of its route. See docs/operations.md.
//
// # Running it
//
// With no flags it listens on :8443 with a development certificate (a
// local CA kept in the data directory), serves the demo page at /, routes
// /stream to a built-in echo, and prints the URLs, the server key to pin
// and how to trust the CA. Run it with -help for the flags, grouped.
//
// # Configuration
//
// Every flag -some-name is also read from the environment variable
// DUALGATE_SOME_NAME and from the key some-name of the TOML file named by
// -config (arrays for repeatable flags). Precedence: flag, environment,
// file, default.
//
// # Signals
//
// SIGHUP reloads the certificates and the routes (flags, environment and
// file read again) without dropping sessions. SIGTERM and SIGINT drain
// within -drain-timeout: /readyz answers 503, the port stops accepting,
// sessions are closed with 1001 after their in-flight data, upstreams are
// closed cleanly, and the process exits 0.
//
// # Wiring
//
// gateway.go builds the data path (listener → tlsmux → net/http →
// wsbridge.Handler → resume.Server; byte-stream and legacy kinds straight
// to their servers; wsbridge.Serve from each server's Accept to the
// upstreams), config.go and configfile.go the configuration, routes.go the
// HTTP endpoints besides the WebSocket routes, main.go the process.
package main
