package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed dist/dualgate.js dist/demo.js dist/dualgate.d.ts dist/types/*.d.ts demo/index.html demo/demo.css
var files embed.FS

// Options configure the Handler. A nil *Options means all defaults.
type Options struct {
	// ServerKey is the gateway's static public key (unpadded base64url, as
	// resume.Key.PublicString returns). When set, the demo page offers it as
	// the pinned key, so that it connects with Noise NK.
	ServerKey string
	// Route is the echo route the demo page connects to (default "/stream").
	Route string
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the demo page and the client bundle (see the package doc for
// the paths). Create it with NewHandler; it is safe for concurrent use and
// immutable once created.
type Handler struct {
	assets map[string]asset
}

// NewHandler returns the handler of the embedded files.
func NewHandler(opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Route == "" {
		o.Route = "/stream"
	}
	h := &Handler{assets: make(map[string]asset)}
	add := func(urlPath, file string, edit func([]byte) []byte) {
		b, err := files.ReadFile(file)
		if err != nil {
			panic("web: embedded file missing: " + file) // impossible: go:embed checked it at build time
		}
		if edit != nil {
			b = edit(b)
		}
		ctype := mime.TypeByExtension(path.Ext(file))
		switch path.Ext(file) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".ts":
			ctype = "application/typescript; charset=utf-8"
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
		sum := sha256.Sum256(b)
		h.assets[urlPath] = asset{body: b, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	}
	page := func(b []byte) []byte {
		s := strings.Replace(string(b), "<head>", `<head>
<meta name="dualgate-server-key" content="`+html.EscapeString(o.ServerKey)+`">
<meta name="dualgate-route" content="`+html.EscapeString(o.Route)+`">`, 1)
		return []byte(s)
	}
	add("/", "demo/index.html", page)
	h.assets["/index.html"] = h.assets["/"]
	add("/demo.css", "demo/demo.css", nil)
	add("/demo.js", "dist/demo.js", nil)
	add("/dualgate.js", "dist/dualgate.js", nil)
	add("/dualgate.d.ts", "dist/dualgate.d.ts", nil)
	types, _ := fs.Glob(files, "dist/types/*.d.ts")
	for _, f := range types {
		add("/types/"+path.Base(f), f, nil)
	}
	return h
}

// Paths returns the URL paths the handler serves.
func (h *Handler) Paths() []string {
	out := make([]string, 0, len(h.assets))
	for p := range h.assets {
		out = append(out, p)
	}
	return out
}

// ServeHTTP answers GET and HEAD for the embedded files, 404 for other paths
// and 405 for other methods.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.ctype, "text/html") {
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.ctype)
	hd.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(a.body) //nolint:errcheck // the client went away
	}
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
