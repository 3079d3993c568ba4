package wsbridge

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// checkOrigin allows a WebSocket request from a browser page on the
// request's own host or on a host matching one of patterns (path.Match
// syntax, case-insensitive), and every request without an Origin header
// (browsers always send one; other clients are not subject to the same-origin
// policy this protects).
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("wsbridge: Origin %q is not a URL with a host", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	host := strings.ToLower(u.Host)
	for _, p := range patterns {
		ok, err := path.Match(strings.ToLower(p), host)
		if err != nil {
			return fmt.Errorf("wsbridge: origin pattern %q: %w", p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("wsbridge: Origin %q is not allowed for host %q", u.Host, r.Host)
}
