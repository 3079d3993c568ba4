// Command dualbench is the load generator of Dualgate. It drives the real
// gateway binary over loopback and reports what an operator chooses a gateway
// on: throughput and CPU cost against two baselines measured in the same run,
// new sessions per second, memory per idle session, resume latency, and a
// byte-verifying soak with random transport drops.
//
// # Usage
//
//	dualbench SCENARIO [flags]
//
// Scenarios:
//
//	throughput  N streams client → gateway → TCP sink (or echo), per message size and
//	            transport (ws, wss), side by side with a bare io.Copy TCP proxy and a
//	            plain WebSocket bridge (coder/websocket NetConn + io.Copy); MB/s, CPU
//	            seconds per GB of the server process, and the ratios.
//	sessions    new resumable sessions per second (handshake, upstream dial, one echo
//	            round trip) with latency percentiles; -baselines adds the WebSocket
//	            bridge and, once per run, the bare TCP proxy: the machine's floor.
//	idle        N idle resumable sessions (default 20,000) spread over 127.0.0.x source
//	            addresses; gateway RSS growth per session.
//	resume      kills transports of live sessions through per-session loopback fault
//	            proxies; time from the new transport's dial to the first replayed DATA
//	            message (p50, p90, p99), split into the gateway's own time and the
//	            client's and proxy's, and bytes replayed.
//	chaos       bounded soak with random transport drops; every byte is verified in both
//	            directions (sequence-numbered pseudorandom data); exit status 1 on any
//	            mismatch or loss.
//
// With -gateway PATH dualbench builds (PATH is a package directory) or runs (PATH
// is an executable) the gateway itself on a free loopback port with a temporary
// data directory and the -route flags its scenarios need, and stops it at the
// end. With -addr HOST:PORT it targets a running gateway instead; that gateway
// must route the paths named by -route-sink, -route-echo to the addresses given
// by -sink-listen and -echo-listen, and -pid lets dualbench read its CPU time and
// RSS from /proc.
//
// Progress goes to stderr about once a second; -json prints the result as one
// JSON document on stdout. Every scenario stops by itself (-duration, -sessions).
// Everything targets 127.0.0.1 (and 127.0.0.x source addresses).
//
// # Measurement notes
//
// CPU figures are utime+stime of the server process from /proc/PID/stat
// (10 ms ticks) over the measuring window only (after a warm-up). The
// baselines run in a child process of dualbench itself (the hidden
// "baseline-server" subcommand) so that their CPU time is measured the same
// way as the gateway's and they do not share the load generator's scheduler
// and garbage collector.
//
// dualbench runs its own side (the clients, the upstreams and the fault
// proxies) with GOGC=400 (debug.SetGCPercent) unless the GOGC environment
// variable is set: the generator shares the CPUs with the gateway, and every
// cycle its collector spends is one the gateway does not get. It changes no
// environment variable: the gateway and the baseline-server and idle-worker
// children run with Go's default, or with the GOGC you set, which they
// inherit. The report names dualbench's own setting (config.client_gogc).
//
// See docs/benchmarks.md for the results on the development machine and how
// to reproduce them.
package main
