package wsbridge_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dualgate/dualgate/internal/testenv"
)

// metricValue returns the value of the counter or gauge name with the
// given label pairs in reg (0 if absent).
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	return testenv.MetricValue(t, reg, name, labels...)
}

// httptestWS starts a WebSocket upstream running fn per connection and
// returns its ws:// URL.
func httptestWS(t testing.TB, fn func(ctx context.Context, c *websocket.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		fn(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}
