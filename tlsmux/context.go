package tlsmux

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
)

type connKey struct{}

// ConnContext is a function for http.Server.ConnContext: it remembers the
// *tls.Conn under c, if any, so that Handler can set r.TLS.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc := tlsConn(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// Handler returns h wrapped so that a request that arrived over TLS has
// r.TLS set even though its connection is not a bare *tls.Conn. It needs
// ConnContext set on the http.Server.
func Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if tc, ok := r.Context().Value(connKey{}).(*tls.Conn); ok {
				st := tc.ConnectionState()
				r2 := *r // shallow, as Request.WithContext does
				r2.TLS = &st
				r = &r2
			}
		}
		h.ServeHTTP(w, r)
	})
}

// ConnectionState returns the TLS state of c, a connection handed out by a
// Mux (or anything whose NetConn chain reaches a *tls.Conn), and false for
// a plain connection.
func ConnectionState(c net.Conn) (tls.ConnectionState, bool) {
	if tc := tlsConn(c); tc != nil {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

func tlsConn(c net.Conn) *tls.Conn {
	for range 16 {
		switch v := c.(type) {
		case *tls.Conn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
