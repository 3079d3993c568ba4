// Package streamtest makes the deterministic byte streams that end-to-end
// and chaos tests push through the gateway, and checks, byte for byte, what
// comes out at the other end.
//
// A stream is pseudo-random data cut into chunks of random size, both drawn
// from one seeded generator, so a writer and a checker built from the same
// seed agree on every byte without sharing memory, and a mismatch names the
// offset of the first wrong byte (loss, duplication and corruption all show
// up as one).
package streamtest
