package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesEmbeddedFiles(t *testing.T) {
	srv := httptest.NewServer(NewHandler(&Options{ServerKey: "9ZBgHMkT_MF1UpShI2T8nWEyNWtTGZ7oQUc32tSFNG0"}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, path, ctype, contains string
	}{
		{"page", "/", "text/html; charset=utf-8", `<script type="module" src="/demo.js">`},
		{"page by name", "/index.html", "text/html; charset=utf-8", `content="9ZBgHMkT_MF1UpShI2T8nWEyNWtTGZ7oQUc32tSFNG0"`},
		{"route meta", "/", "text/html; charset=utf-8", `<meta name="dualgate-route" content="/stream">`},
		{"bundle", "/dualgate.js", "text/javascript; charset=utf-8", "dualgate.v1"},
		{"demo script", "/demo.js", "text/javascript; charset=utf-8", `from"./dualgate.js"`},
		{"style", "/demo.css", "text/css; charset=utf-8", ".card"},
		{"types", "/dualgate.d.ts", "application/typescript; charset=utf-8", `export * from "./types/index.js"`},
		{"module types", "/types/client.d.ts", "application/typescript; charset=utf-8", "export declare class DualgateSocket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("cache/security headers: %v", res.Header)
			}
			if !bytes.Contains(body, []byte(tt.contains)) {
				t.Errorf("body of %s lacks %q", tt.path, tt.contains)
			}
		})
	}
}

func TestHandlerConditionalAndErrors(t *testing.T) {
	h := NewHandler(nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dualgate.js", nil))
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || etag == "" {
		t.Fatalf("first GET: %d etag %q", rec.Code, etag)
	}

	req := httptest.NewRequest(http.MethodGet, "/dualgate.js", nil)
	req.Header.Set("If-None-Match", `"other", W/`+etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("revalidation: %d with %d bytes", rec.Code, rec.Body.Len())
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, %d bytes, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' ws: wss:") {
		t.Errorf("CSP %q", csp)
	}

	for _, p := range []string{"/nope", "/dist/dualgate.js", "/demo/index.html", "/embed.go", "/../go.mod"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = p
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestHandlerEscapesOptions(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler(&Options{ServerKey: `"><script>`, Route: "/x"}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if strings.Contains(rec.Body.String(), `"><script>`) {
		t.Fatal("server key not escaped")
	}
	if !strings.Contains(rec.Body.String(), `content="/x"`) {
		t.Fatal("route not set")
	}
}

func TestHandlerPaths(t *testing.T) {
	got := strings.Join(NewHandler(nil).Paths(), " ")
	for _, p := range []string{"/", "/dualgate.js", "/demo.js", "/demo.css", "/dualgate.d.ts", "/types/index.d.ts"} {
		if !strings.Contains(" "+got+" ", " "+p+" ") {
			t.Errorf("Paths() lacks %s: %s", p, got)
		}
	}
}
