// Command gateway runs Dualgate: ws:// and wss:// (and the resumable byte
// stream) on one TCP port. Run it with -help for the flags; every flag
// -some-name is also read from the environment variable DUALGATE_SOME_NAME.
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
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run parses the configuration, serves until SIGINT or SIGTERM, then shuts
// down gracefully.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	g, err := newGateway(cfg, log)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- g.serve() }()
	ws, wss := g.urls()
	log.Info("gateway: serving", "addr", g.addr().String(), "data_dir", cfg.DataDir)
	fmt.Fprintf(stdout, "Dualgate listening on %s\n  try: %s\n  try: %s\n", g.addr(), ws, wss)

	select {
	case err := <-errc:
		_ = g.shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way
	log.Info("gateway: shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = g.shutdown(sctx)
	if serr := <-errc; err == nil {
		err = serr
	}
	log.Info("gateway: stopped", "err", err)
	return err
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
