package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startTimeout bounds the start-up work (loading or creating certificates).
const startTimeout = 2 * time.Minute

// run parses the configuration, serves until SIGINT or SIGTERM, then drains.
// SIGHUP reloads the certificates and the routes.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	// Signals are registered before the port is bound, so that a SIGTERM
	// right after start-up drains instead of killing.
	stopc := make(chan os.Signal, 2)
	signal.Notify(stopc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stopc)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	sctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	g, err := newGateway(sctx, cfg, log)
	cancel()
	if err != nil {
		return err
	}
	if cfg.DebugListen != "" {
		d, err := startDebug(cfg.DebugListen, log)
		if err != nil {
			_ = g.close()
			return err
		}
		defer d.stop()
	}
	errc := make(chan error, 1)
	go func() { errc <- g.serve() }()
	log.Info("gateway: serving", "addr", g.addr().String(), "data_dir", cfg.DataDir, "tls", cfg.tlsMode.String(), "routes", routeList(cfg.routes), "legacy", cfg.Legacy)
	printBanner(stdout, g)

	for {
		select {
		case err := <-errc:
			log.Error("gateway: serving failed", "err", err)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
			_ = g.shutdown(ctx)
			cancel()
			return err
		case <-hup:
			log.Info("gateway: SIGHUP: reloading certificates and configuration")
			ncfg, err := parseConfig(args, getenv, io.Discard)
			if err != nil {
				log.Error("gateway: reload: configuration refused, routes kept", "err", err)
				ncfg = nil
			}
			_ = g.reload(ncfg)
			continue
		case sig := <-stopc:
			log.Info("gateway: draining", "signal", sig.String(), "timeout", cfg.DrainTimeout)
		}
		break
	}
	signal.Stop(stopc) // a second signal kills the process the default way
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	err = g.shutdown(ctx)
	if serr := <-errc; err == nil {
		err = serr
	}
	log.Info("gateway: stopped", "err", err)
	return err
}

// printBanner prints what a new user needs: where to point a browser and a
// client, the key to pin, and how to trust the certificate.
func printBanner(w io.Writer, g *gateway) {
	hp := g.hostPort()
	tls := g.mux != nil
	fmt.Fprintf(w, "Dualgate listening on %s (ws:// and wss:// on one port)\n", g.addr())
	fmt.Fprintf(w, "  demo page:  http://%s/\n", hp)
	if tls {
		fmt.Fprintf(w, "  demo page:  https://%s/\n", hp)
	}
	for _, r := range g.cfg.routes.All() {
		fmt.Fprintf(w, "  stream:     ws://%s%s  → %s\n", hp, r.Path, r.Upstream)
		if tls {
			fmt.Fprintf(w, "  stream:     wss://%s%s  → %s\n", hp, r.Path, r.Upstream)
		}
	}
	fmt.Fprintf(w, "  byte stream: tcp://%s", hp)
	if tls {
		fmt.Fprintf(w, " and tls://%s", hp)
	}
	fmt.Fprintf(w, "  → route %s\n", g.cfg.StreamRoute)
	fmt.Fprintf(w, "  server key (pin it): %s\n", g.key.PublicString())
	if g.legacy != nil {
		fmt.Fprintf(w, "  legacy snet clients: on (weak cryptography) → route %s\n", g.cfg.LegacyRoute)
	}
	for _, l := range g.certs.Info().Banner() {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
