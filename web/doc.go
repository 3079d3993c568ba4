// Package web serves the Dualgate browser client and its demo page, embedded
// in the gateway binary so that running the gateway needs no Node.js.
//
// The TypeScript sources live in web/src (the client of the resumable stream
// protocol, docs/protocol.md) and web/demo (the demo page). `npm run build`
// in this folder bundles them with esbuild into web/dist, which is committed;
// the web tests fail when dist/ differs from a fresh build.
//
// # Served paths
//
//	/               the demo page (demo/index.html)
//	/index.html     the same
//	/demo.css       the demo's style sheet
//	/demo.js        the demo's script
//	/dualgate.js    the client library, an ES module (import { connect } from "/dualgate.js")
//	/dualgate.d.ts  its type declarations (re-exporting /types/*.d.ts)
//	/types/*.d.ts   the declarations of each module
//
// Every other path is answered 404 so that the handler can be mounted at "/"
// next to more specific routes. Responses carry an ETag (a hash of the
// content) and "Cache-Control: no-cache", so browsers revalidate cheaply and
// always run the bundle of the running gateway.
//
// # Tests
//
// `npm test` (called by `make test`) runs the Node unit tests and the browser
// tests, which drive /usr/bin/chromium through playwright-core against a real
// Go server; see web/README.md.
package web
