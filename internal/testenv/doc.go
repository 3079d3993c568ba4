// Package testenv holds the few facts tests need about the machine they run on:
// whether the race detector is on (heavy tests scale down under it and run at
// full size in the separate non-race pass of `make test`), and where the real
// external components (Chromium, Pebble, Dante) live.
//
// A test whose real component is missing fails with a message naming the
// command that installs it; it never skips. `make test` installs everything.
package testenv
