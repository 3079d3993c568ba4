// Browser tests: the bundle served by a real Go server (see harness.ts for
// which one), driven in Debian's Chromium. Nothing is mocked: real TCP on
// loopback, real TLS, the real resume.Server, the browser's own WebSocket,
// WebCrypto and event loop.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { HOST, SERVER, launch, startServer, type Server } from "./harness.js";

const webRoot = process.env.DUALGATE_WEB_ROOT ?? process.cwd();
const results = path.join(webRoot, "test-results");
let srv: Server;
let browser: { ctx: BrowserContext; close(): Promise<void> };

before(async () => {
  srv = await startServer();
  browser = await launch(srv.spki);
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  await srv?.stop();
});

async function open(url: string): Promise<Page> {
  const page = await browser.ctx.newPage();
  page.setDefaultTimeout(120_000);
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(url);
  return page;
}

interface EchoResult {
  ok: boolean;
  got: number;
  cuts: number;
  resumes: number;
  replayed: number;
  duplicates: number;
  suite: string;
  pattern: string;
  ms: number;
  secure: boolean;
  closeCode: number;
  /** plain is ws.plainInTLS on each transport: at open, then after every resume. */
  plain: boolean[];
}

/**
 * echoInPage sends size bytes as 64 KiB messages, cuts the transport `cuts`
 * times while data flows both ways, and checks the echo byte for byte. key
 * pins the server (NK); without it the handshake is NN.
 */
function echoInPage(page: Page, args: { key?: string; size: number; cuts: number; cipher: string; alwaysSeal?: boolean }): Promise<EchoResult> {
  return page.evaluate(async ({ key, size, cuts, cipher, alwaysSeal }) => {
    const spec = "/dualgate.js";
    const lib = await import(spec);
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/stream`;
    const ws = lib.connect(url, { serverKey: key, cipher, alwaysSeal, backoff: { initialDelay: 20, maxDelay: 500 } });
    await ws.opened;
    const plain: boolean[] = [ws.plainInTLS];
    ws.addEventListener("resumed", () => plain.push(ws.plainInTLS));
    const byte = (x: number) => ((x * 2654435761) >>> 24) ^ (x >>> 13) ^ (x & 0xff);
    let got = 0;
    let ok = true;
    let cutsDone = 0;
    const step = Math.floor(size / (cuts + 1));
    const t0 = performance.now();
    const done = new Promise<void>((resolve, reject) => {
      ws.addEventListener("close", (e: { code: number; reason: string }) => reject(new Error(`closed ${e.code} ${e.reason}`)));
      ws.addEventListener("message", (e: { data: Uint8Array }) => {
        const d = e.data;
        for (let i = 0; i < d.length; i++) {
          if (d[i] !== (byte(got + i) & 0xff)) {
            ok = false;
            break;
          }
        }
        got += d.length;
        // Cut while both directions carry data.
        if (cutsDone < cuts && got >= step * (cutsDone + 1) && ws.state === "open") {
          cutsDone++;
          ws.dropTransport();
        }
        if (got >= size) resolve();
      });
    });
    const piece = 64 << 10;
    for (let o = 0; o < size; o += piece) {
      const b = new Uint8Array(Math.min(piece, size - o));
      for (let i = 0; i < b.length; i++) b[i] = byte(o + i) & 0xff;
      if (!ws.send(b)) await ws.drain(1 << 20);
    }
    await done;
    const ms = performance.now() - t0;
    const st = ws.stats;
    const closed = new Promise<number>((r) => ws.addEventListener("close", (e: { code: number }) => r(e.code)));
    ws.close(1000, "done");
    const closeCode = await closed;
    return { ok, got, cuts: cutsDone, resumes: st.resumes, replayed: st.replayedBytes, duplicates: st.duplicateBytes, suite: st.suite, pattern: st.pattern, ms, secure: isSecureContext, closeCode, plain };
  }, args);
}

const SIZE = 10 << 20;

test(`http:// page over ws:// (${SERVER}): 10 MiB echo byte for byte with 20+ transport cuts, pure-JS ChaCha20-Poly1305`, { timeout: 600_000 }, async () => {
  const page = await open(`http://${HOST}:${srv.port}/`);
  const r = await echoInPage(page, { key: srv.key, size: SIZE, cuts: 24, cipher: "auto" });
  console.log(`ws:// ${JSON.stringify(r)}`);
  assert.equal(r.secure, false, "an http:// page on a non-loopback name is not a secure context");
  assert.equal(r.suite, "25519_ChaChaPoly_SHA256", "auto picks ChaCha where crypto.subtle is missing");
  assert.equal(r.pattern, "NK");
  assert.equal(r.got, SIZE);
  assert.ok(r.ok, "echo differs from what was sent");
  assert.ok(r.cuts >= 20 && r.resumes >= 20, `cuts ${r.cuts}, resumes ${r.resumes}`);
  assert.equal(r.closeCode, 1000);
  assertModes(r, false);
  await page.close();
});

test(`https:// page over wss:// (${SERVER}): 10 MiB echo byte for byte with 20+ transport cuts, WebCrypto AES-GCM`, { timeout: 600_000 }, async () => {
  const page = await open(`https://127.0.0.1:${srv.port}/`);
  const r = await echoInPage(page, { key: srv.key, size: SIZE, cuts: 24, cipher: "auto" });
  console.log(`wss:// ${JSON.stringify(r)}`);
  assert.equal(r.secure, true);
  assert.equal(r.suite, "25519_AESGCM_SHA256");
  assert.equal(r.got, SIZE);
  assert.ok(r.ok, "echo differs from what was sent");
  assert.ok(r.cuts >= 20 && r.resumes >= 20, `cuts ${r.cuts}, resumes ${r.resumes}`);
  assert.equal(r.closeCode, 1000);
  assertModes(r, false); // a pinned key always seals
  await page.close();
});

/** assertModes checks ws.plainInTLS on every transport of an echo run: one entry per transport, all equal to want. */
function assertModes(r: EchoResult, want: boolean): void {
  assert.equal(r.plain.length, r.resumes + 1, `plainInTLS recorded per transport: ${JSON.stringify(r.plain)}`);
  assert.deepEqual(r.plain, r.plain.map(() => want), `plainInTLS per transport: ${JSON.stringify(r.plain)}`);
}

test(`https:// page over wss:// without a pinned key (${SERVER}, TLS 1.3): plain-in-TLS frames on every transport, 4 MiB echo byte for byte with 12 cuts`, { timeout: 600_000 }, async () => {
  const page = await open(`https://127.0.0.1:${srv.port}/`);
  const size = 4 << 20;
  const r = await echoInPage(page, { size, cuts: 12, cipher: "auto" });
  console.log(`wss:// NN ${JSON.stringify(r)}`);
  assert.equal(r.secure, true);
  assert.equal(r.pattern, "NN");
  assert.equal(r.got, size);
  assert.ok(r.ok, "echo differs from what was sent");
  assert.ok(r.cuts >= 10 && r.resumes >= 10, `cuts ${r.cuts}, resumes ${r.resumes}`);
  assert.equal(r.closeCode, 1000);
  assertModes(r, true);
  await page.close();
});

for (const [name, scheme, pin, alwaysSeal] of [
  ["https:// page, wss:// with a pinned key (NK)", "https", true, false],
  ["https:// page, wss:// with alwaysSeal", "https", false, true],
  ["http:// page, ws:// without a pinned key (NN)", "http", false, false],
] as const) {
  test(`${name} (${SERVER}): every frame sealed, plainInTLS false; 1 MiB echo with 4 cuts`, { timeout: 300_000 }, async () => {
    const page = await open(`${scheme}://${scheme === "https" ? "127.0.0.1" : HOST}:${srv.port}/`);
    const size = 1 << 20;
    const r = await echoInPage(page, { key: pin ? srv.key : undefined, size, cuts: 4, cipher: "auto", alwaysSeal });
    assert.equal(r.secure, scheme === "https");
    assert.equal(r.pattern, pin ? "NK" : "NN");
    assert.equal(r.got, size);
    assert.ok(r.ok, "echo differs from what was sent");
    assert.ok(r.cuts >= 4 && r.resumes >= 4, `cuts ${r.cuts}, resumes ${r.resumes}`);
    assert.equal(r.closeCode, 1000);
    assertModes(r, false);
    await page.close();
  });
}

test("clean close: both CLOSE frames exchanged, close event 1000 with reason", { timeout: 120_000 }, async () => {
  const page = await open(`https://127.0.0.1:${srv.port}/`);
  const r = await page.evaluate(async (key) => {
    const spec = "/dualgate.js";
    const lib = await import(spec);
    const ws = lib.connect(`wss://${location.host}/stream`, { serverKey: key });
    const states: string[] = [];
    ws.addEventListener("statechange", (e: { state: string }) => states.push(e.state));
    await ws.opened;
    const echo = new Promise<string>((res) => ws.addEventListener("message", (e: { data: string }) => res(e.data), { once: true }));
    ws.send("hello, gateway");
    const text = await echo;
    const ev = await new Promise<{ code: number; reason: string; wasClean: boolean }>((res) => {
      ws.addEventListener("close", (e: { code: number; reason: string; wasClean: boolean }) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean }));
      ws.close(1000, "bye");
    });
    return { text, ev, states, buffered: ws.bufferedAmount };
  }, srv.key);
  assert.equal(r.text, "hello, gateway");
  assert.deepEqual(r.ev, { code: 1000, reason: "bye", wasClean: true });
  assert.deepEqual(r.states, ["open", "closed"]);
  assert.equal(r.buffered, 0);
  await page.close();
});

test("pinned-key mismatch is refused (4008) and never opens", { timeout: 120_000 }, async () => {
  const page = await open(`https://127.0.0.1:${srv.port}/`);
  const r = await page.evaluate(async () => {
    const spec = "/dualgate.js";
    const lib = await import(spec);
    const wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".slice(0, 42) + "E";
    let opened = false;
    const ws = lib.connect(`wss://${location.host}/stream`, { serverKey: wrong });
    ws.addEventListener("open", () => (opened = true));
    const ev = await new Promise<{ code: number; reason: string }>((res) => ws.addEventListener("close", (e: { code: number; reason: string }) => res({ code: e.code, reason: e.reason })));
    return { ev, opened, state: ws.state };
  });
  assert.equal(r.ev.code, 4008, JSON.stringify(r));
  assert.equal(r.opened, false);
  assert.equal(r.state, "closed");
  await page.close();
});

test("an expired session is reported as such (4001)", { timeout: 180_000 }, async () => {
  const short = await startServer({ detachedTTL: "2s" });
  try {
    const page = await open(`http://${HOST}:${short.port}/`);
    const r = await page.evaluate(async (key) => {
      const spec = "/dualgate.js";
    const lib = await import(spec);
      const url = `ws://${location.host}/stream`;
      let calls = 0;
      // The second transport is delayed past the server's detached TTL, as
      // if the laptop slept: the server has expired the session by then.
      const provider = async () => {
        if (calls++ > 0) await new Promise((r) => setTimeout(r, 4500));
        return url;
      };
      const ws = lib.connect(provider, { serverKey: key, giveUpAfter: 60_000 });
      await ws.opened;
      const echo = new Promise((res) => ws.addEventListener("message", res, { once: true }));
      ws.send("before the nap");
      await echo; // the server has the session (CONFIRM and data arrived)
      const ev = new Promise<{ code: number; reason: string; wasClean: boolean }>((res) =>
        ws.addEventListener("close", (e: { code: number; reason: string; wasClean: boolean }) => res({ code: e.code, reason: e.reason, wasClean: e.wasClean })));
      ws.dropTransport();
      return { ev: await ev, calls };
    }, short.key);
    assert.equal(r.ev.code, 4001, JSON.stringify(r));
    assert.equal(r.ev.wasClean, false);
    assert.equal(r.calls, 2);
    await page.close();
  } finally {
    await short.stop();
  }
});

test("the demo page renders, echoes, survives a cut and verifies a bulk echo (screenshot)", { timeout: 300_000 }, async () => {
  const page = await open(`http://${HOST}:${srv.port}/`);
  for (const sel of ["#connect", "#cut", "#state", "#url", "#bulk-start", "#events", "#messages-card"]) {
    assert.ok(await page.locator(sel).isVisible(), `${sel} visible`);
  }
  assert.equal(await page.inputValue("#url"), `ws://${HOST}:${srv.port}/stream`);
  assert.equal(await page.inputValue("#key"), srv.key, "the page offers the server's key");
  assert.ok(await page.isChecked('input[name="scheme"][value="ws"]'));
  await page.check('input[name="scheme"][value="wss"]');
  assert.equal(await page.inputValue("#url"), `wss://${HOST}:${srv.port}/stream`);
  await page.check('input[name="scheme"][value="ws"]');
  assert.equal(await page.inputValue("#url"), `ws://${HOST}:${srv.port}/stream`);
  await page.click("#connect");
  await page.locator('#state[data-state="open"]').waitFor();
  await page.fill("#message", "hello from the demo");
  await page.click("#send");
  await page.locator("#messages li.in", { hasText: "hello from the demo" }).waitFor();
  await page.click("#cut");
  await page.locator("#event-log li", { hasText: "resumed after" }).waitFor();
  await page.locator('#state[data-state="open"]').waitFor();
  await page.selectOption("#bulk-size", "1048576");
  await page.click("#bulk-start");
  await page.locator('#bulk-check[data-result="ok"]').waitFor();
  await page.waitForFunction(() => document.getElementById("rtt")?.textContent !== "–");
  assert.equal(await page.textContent("#resumes"), "1");
  mkdirSync(results, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  writeFileSync(path.join(results, "demo.png"), png);
  assert.ok(png.length > 20_000, `screenshot of ${png.length} bytes`);
  // PNG signature and a plausible size from its IHDR chunk.
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width === 1280 && height >= 600, `${width}x${height}`);
  // Mobile layout: no horizontal scrolling at 390 px.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px on a phone`);
  writeFileSync(path.join(results, "demo-mobile.png"), await page.screenshot({ fullPage: true }));
  await page.close();
});

test("online, visibilitychange and pageshow end the backoff wait at once", { timeout: 180_000 }, async () => {
  const page = await open(`http://${HOST}:${srv.port}/`);
  const r = await page.evaluate(async (key) => {
    const spec = "/dualgate.js";
    const lib = await import(spec);
    const good = `ws://${location.host}/stream`;
    const bad = `ws://${location.hostname}:1/stream`; // nothing listens on port 1
    let useGood = true;
    // Backoff delays of up to ten minutes: only the page events can explain a prompt resume.
    const ws = lib.connect(() => (useGood ? good : bad), { serverKey: key, backoff: { initialDelay: 600_000, maxDelay: 600_000 } });
    await ws.opened;
    let lost = 0;
    ws.addEventListener("transportclose", () => lost++);
    const out: { event: string; resumeMs: number }[] = [];
    const events: [string, () => void][] = [
      ["online", () => window.dispatchEvent(new Event("online"))],
      ["visibilitychange", () => document.dispatchEvent(new Event("visibilitychange"))],
      ["pageshow", () => window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }))],
    ];
    for (const [name, fire] of events) {
      useGood = false;
      const before = lost;
      ws.dropTransport();
      // Wait for the immediate retry to fail too: the client now sleeps in backoff.
      while (lost < before + 2) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      useGood = true;
      const t0 = performance.now();
      const resumed = new Promise((res) => ws.addEventListener("resumed", res, { once: true }));
      fire();
      await resumed;
      out.push({ event: name, resumeMs: performance.now() - t0 });
    }
    ws.close();
    return { out, visible: document.visibilityState };
  }, srv.key);
  assert.equal(r.visible, "visible");
  assert.deepEqual(r.out.map((x) => x.event), ["online", "visibilitychange", "pageshow"]);
  for (const x of r.out) assert.ok(x.resumeMs < 30_000, `${x.event}: resumed after ${x.resumeMs} ms`);
  await page.close();
});

test("two tabs never share a session; a cut in one leaves the other alone", { timeout: 120_000 }, async () => {
  const pages = [await open(`https://127.0.0.1:${srv.port}/`), await open(`https://127.0.0.1:${srv.port}/`)];
  const start = (p: Page) => p.evaluate(async (key) => {
    const spec = "/dualgate.js";
    const lib = await import(spec);
    const ws = lib.connect(`wss://${location.host}/stream`, { serverKey: key });
    (window as unknown as { ws: unknown }).ws = ws;
    await ws.opened;
    return ws.sessionId as string;
  }, srv.key);
  const [a, b] = [await start(pages[0]!), await start(pages[1]!)];
  assert.notEqual(a, b);
  await pages[0]!.evaluate(async () => {
    const ws = (window as unknown as { ws: { dropTransport(): void; addEventListener(t: string, f: () => void, o: unknown): void } }).ws;
    const r = new Promise<void>((res) => ws.addEventListener("resumed", () => res(), { once: true }));
    ws.dropTransport();
    await r;
  });
  const stats = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { ws: { stats: { resumes: number }; sessionId: string } }).ws.stats.resumes)));
  assert.deepEqual(stats, [1, 0]);
  for (const p of pages) await p.close();
});
