package proxydial

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// FromEnvironment returns the proxy URL to use for target according to the
// environment variables https_proxy, http_proxy, all_proxy and no_proxy (or,
// when the lower-case form is empty, HTTPS_PROXY and so on, as net/http reads
// them), or nil for a direct connection. The target's scheme
// selects the variable:
//
//	https, wss            HTTPS_PROXY, else ALL_PROXY
//	http, ws              HTTP_PROXY, else ALL_PROXY
//	tcp, tls, any other   ALL_PROXY
//
// A value without a scheme means http://. NO_PROXY, and the rule that
// "localhost" and loopback IP literals are never proxied, are applied as
// golang.org/x/net/http/httpproxy (and so net/http) applies them. The target
// must have a host; a port is needed only for schemes without a default (ws
// and http 80, wss and https 443). The environment is read on every call.
func FromEnvironment(target *url.URL) (*url.URL, error) {
	return fromEnv(os.Getenv, target)
}

// defaultPorts gives the port NO_PROXY port matching assumes when the target
// URL has none.
var defaultPorts = map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}

func fromEnv(getenv func(string) string, target *url.URL) (*url.URL, error) {
	if target == nil || target.Hostname() == "" {
		return nil, fmt.Errorf("proxydial: target URL %v has no host", target)
	}
	env := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return getenv(strings.ToUpper(name))
	}
	all := env("all_proxy")
	cfg := httpproxy.Config{
		NoProxy: env("no_proxy"),
		CGI:     getenv("REQUEST_METHOD") != "",
	}
	scheme := strings.ToLower(target.Scheme)
	// httpproxy knows only http and https; ask it about an equivalent
	// http(s) URL for the same host and port.
	probe := &url.URL{Scheme: "http", Host: target.Host}
	switch scheme {
	case "https", "wss":
		probe.Scheme = "https"
		cfg.HTTPSProxy = firstNonEmpty(env("https_proxy"), all)
	case "http", "ws":
		cfg.HTTPProxy = env("http_proxy")
		if cfg.HTTPProxy == "" {
			// The CGI guard is about HTTP_PROXY, which a client can set
			// through the Proxy request header; ALL_PROXY is not.
			cfg.HTTPProxy, cfg.CGI = all, false
		}
	default:
		cfg.HTTPProxy, cfg.CGI = all, false
	}
	if target.Port() == "" {
		p, ok := defaultPorts[scheme]
		if !ok {
			return nil, fmt.Errorf("proxydial: target URL %s has no port", target.Redacted())
		}
		probe.Host = net.JoinHostPort(target.Hostname(), p)
	}
	for _, v := range []string{cfg.HTTPProxy, cfg.HTTPSProxy} {
		if v == "" {
			continue
		}
		if _, err := parseEnvProxy(v); err != nil {
			return nil, err
		}
	}
	u, err := cfg.ProxyFunc()(probe)
	if err != nil {
		return nil, fmt.Errorf("proxydial: proxy from environment: %w", err)
	}
	return u, nil
}

// parseEnvProxy reports a malformed proxy variable, which httpproxy would
// silently ignore (and so connect directly, which is surprising behind a
// mandatory proxy).
func parseEnvProxy(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if (err != nil || u.Scheme == "" || u.Host == "") && !strings.Contains(v, "://") {
		u, err = url.Parse("http://" + v)
	}
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("proxydial: invalid proxy in environment %q", redactRaw(v))
	}
	return u, nil
}

// redactRaw hides a password in a proxy value that did not parse as a URL.
func redactRaw(v string) string {
	if at := strings.LastIndexByte(v, '@'); at >= 0 {
		return "***@" + v[at+1:]
	}
	return v
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
