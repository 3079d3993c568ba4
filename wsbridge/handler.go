package wsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dualgate/dualgate/resume"
	"github.com/prometheus/client_golang/prometheus"
)

// MaxProtocolMessage is the largest protocol message (docs/protocol.md §2);
// the handler's WebSocket read limit.
const MaxProtocolMessage = 65535

// HandlerOptions configure a Handler. A nil *HandlerOptions means all
// defaults. The struct is copied by NewHandler.
type HandlerOptions struct {
	// OriginPatterns lists the browser origins (host[:port] patterns in
	// path.Match syntax, compared case-insensitively, for example
	// "app.example.com" or "*.example.com") allowed besides the request's
	// own host. Empty means same-origin only; requests without an Origin
	// header (non-browser clients) are always allowed.
	OriginPatterns []string
	// InsecureSkipOriginCheck accepts every origin. For development only.
	InsecureSkipOriginCheck bool
	// ReadLimit is unused: the protocol's transports take messages of at
	// most MaxProtocolMessage (65,535) bytes. Kept for compatibility.
	ReadLimit int64
	// NotFound serves requests for paths without a route (the demo page,
	// /healthz, …). Nil means a plain 404.
	NotFound http.Handler
	// Logger receives handler events. Nil means no logging.
	Logger *slog.Logger
	// Registerer receives the handler metrics. Nil means no metrics.
	Registerer prometheus.Registerer
}

// Handler is the http.Handler of the WebSocket entry point: for each route
// path it upgrades to WebSocket and serves the connection as a transport of
// the resume server. Create one with NewHandler; the zero value is not
// usable. A Handler is safe for concurrent use.
type Handler struct {
	srv     *resume.Server
	routes  atomic.Pointer[Routes]
	o       HandlerOptions
	log     *slog.Logger
	upgrade *prometheus.CounterVec
	active  prometheus.Gauge

	// serve runs one upgraded connection. It is the seam for other
	// transport kinds on a route (for example legacy over WebSocket).
	start func(ctx context.Context, t resume.Transport, info resume.TransportInfo, done func(error))

	ctx    context.Context // cancelled by Shutdown when its ctx ends
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // running transports
}

// NewHandler returns a Handler serving the paths of routes (replaceable with
// SetRoutes) as transports of srv.
func NewHandler(srv *resume.Server, routes *Routes, opts *HandlerOptions) (*Handler, error) {
	if srv == nil {
		return nil, errors.New("wsbridge: NewHandler needs a resume server")
	}
	var o HandlerOptions
	if opts != nil {
		o = *opts
		o.OriginPatterns = append([]string(nil), opts.OriginPatterns...)
	}
	if o.ReadLimit < MaxProtocolMessage {
		o.ReadLimit = MaxProtocolMessage
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{srv: srv, o: o, log: o.Logger}
	h.routes.Store(routes)
	h.upgrade = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dualgate_wsbridge_upgrades_total",
		Help: "WebSocket requests on route paths, by result (ok, not_dualgate, rejected, not_found, closing).",
	}, []string{"result"})
	h.active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dualgate_wsbridge_transports_active",
		Help: "WebSocket transports currently served.",
	})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{h.upgrade, h.active} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("wsbridge: registering handler metrics: %w", err)
			}
		}
	}
	h.start = h.srv.StartTransport
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// SetRoutes replaces the route table for requests from now on.
func (h *Handler) SetRoutes(routes *Routes) { h.routes.Store(routes) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, ok := h.routes.Load().Lookup(r.URL.Path)
	if !ok {
		if h.o.NotFound != nil {
			h.o.NotFound.ServeHTTP(w, r)
			return
		}
		h.upgrade.WithLabelValues("not_found").Inc()
		http.NotFound(w, r)
		return
	}
	if !h.track() {
		h.upgrade.WithLabelValues("closing").Inc()
		w.Header().Set("Connection", "close")
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	served := false // once the transport is handed over, its end calls h.wg.Done
	defer func() {
		if !served {
			h.wg.Done()
		}
	}()

	if !h.o.InsecureSkipOriginCheck {
		if err := checkOrigin(r, h.o.OriginPatterns); err != nil {
			h.upgrade.WithLabelValues("rejected").Inc()
			h.log.Debug("wsbridge: upgrade rejected", "path", r.URL.Path, "client", r.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
	}
	t, err := resume.UpgradeWebSocket(w, r)
	if errors.Is(err, resume.ErrNotDualgate) {
		h.upgrade.WithLabelValues("not_dualgate").Inc()
		return
	}
	if err != nil { // UpgradeWebSocket has answered (400, 426)
		h.upgrade.WithLabelValues("rejected").Inc()
		h.log.Debug("wsbridge: upgrade rejected", "path", r.URL.Path, "client", r.RemoteAddr, "err", err)
		return
	}
	h.upgrade.WithLabelValues("ok").Inc()
	h.active.Inc()

	// The handshake runs here; then the transport is served in the
	// background and this goroutine (with the HTTP server's buffers) ends:
	// an idle transport costs one small parked goroutine.
	info := resume.TransportInfo{Route: route.Path, RemoteAddr: clientAddr(r.RemoteAddr), Secure: r.TLS != nil}
	if r.TLS != nil {
		info.TLSVersion = r.TLS.Version
	}
	client := r.RemoteAddr
	served = true
	h.start(h.ctx, t, info, func(err error) {
		if err != nil {
			h.log.Debug("wsbridge: transport ended", "path", route.Path, "client", client, "err", err)
		}
		t.Close(0, "") //nolint:errcheck // the server closed it already
		h.active.Dec()
		h.wg.Done()
	})
}

func clientAddr(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (h *Handler) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// Shutdown refuses new upgrades (503) and waits for the running transports
// to end (resume.Server.Shutdown or Close ends them). When ctx ends first, it
// ends the remaining transports, waits for them (at most 15 s) and returns
// ctx's error. http.Server.Shutdown does not wait for hijacked connections,
// which is why the Handler has its own.
func (h *Handler) Shutdown(ctx context.Context) error {
	h.stopUpgrades()
	done := h.transportsDone()
	select {
	case <-done:
		h.cancel()
		return nil
	case <-ctx.Done():
	}
	h.cancel()
	if err := waitBounded(done); err != nil {
		return err
	}
	return fmt.Errorf("wsbridge: handler shutdown: %w", ctx.Err())
}

// Close ends every running transport at once and waits for them (at most
// 15 s); new upgrades get 503. It is idempotent.
func (h *Handler) Close() error {
	h.stopUpgrades()
	h.cancel()
	return waitBounded(h.transportsDone())
}

func (h *Handler) stopUpgrades() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// transportsDone returns a channel closed once no transport runs. Call it
// only after stopUpgrades, so that the count can only fall.
func (h *Handler) transportsDone() <-chan struct{} {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	return done
}

// waitBounded waits for done for at most closeWait.
func waitBounded(done <-chan struct{}) error {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return errors.New("wsbridge: still running 15s after close")
	}
}
