// Throughput of the browser client in Chromium against the server of
// harness.ts: `npm run bench` in web/. Figures are printed, never asserted
// (the machine is shared); only the echo's correctness is checked.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { BrowserContext } from "playwright-core";
import { HOST, SERVER, launch, startServer, type Server } from "../browser/harness.js";

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

const SIZE = 32 << 20;
const cases = [
  { name: "ws:// http page, ChaCha20-Poly1305 (pure JS)", url: () => `http://${HOST}:${srv.port}/`, cipher: "auto" },
  { name: "wss:// https page, ChaCha20-Poly1305 (pure JS)", url: () => `https://127.0.0.1:${srv.port}/`, cipher: "chacha20-poly1305" },
  { name: "wss:// https page, AES-256-GCM (WebCrypto)", url: () => `https://127.0.0.1:${srv.port}/`, cipher: "aes-gcm" },
];

for (const c of cases) {
  for (const piece of [16 << 10, 256 << 10]) {
    test(`bench ${SERVER}: ${c.name}, ${piece >> 10} KiB messages, ${SIZE >> 20} MiB echoed`, { timeout: 600_000 }, async () => {
      const page = await browser.ctx.newPage();
      page.setDefaultTimeout(600_000);
      await page.goto(c.url());
      // Main-thread CPU of the page (scripts and all tasks) is less sensitive to a
      // loaded machine than wall-clock throughput.
      const cdp = await browser.ctx.newCDPSession(page);
      await cdp.send("Performance.enable");
      const metric = async () => {
        const m = (await cdp.send("Performance.getMetrics")) as { metrics: { name: string; value: number }[] };
        const get = (n: string) => m.metrics.find((x) => x.name === n)?.value ?? 0;
        return { script: get("ScriptDuration"), task: get("TaskDuration") };
      };
      const m0 = await metric();
      const r = await page.evaluate(async ({ key, size, cipher, piece }) => {
        const spec = "/dualgate.js";
        const lib = await import(spec);
        const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/stream`;
        const ws = lib.connect(url, { serverKey: key, cipher });
        await ws.opened;
        const chunk = new Uint8Array(piece);
        for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
        let got = 0;
        let ok = true;
        const t0 = performance.now();
        const done = new Promise<void>((res) => ws.addEventListener("message", (e: { data: Uint8Array }) => {
          if (e.data.length !== piece || e.data[piece - 1] !== chunk[piece - 1]) ok = false;
          got += e.data.length;
          if (got >= size) res();
        }));
        for (let o = 0; o < size; o += piece) if (!ws.send(chunk)) await ws.drain(1 << 20);
        await done;
        const ms = performance.now() - t0;
        ws.close();
        return { ok, got, ms, suite: ws.stats.suite };
      }, { key: srv.key, size: SIZE, cipher: c.cipher, piece });
      const m1 = await metric();
      const mib = SIZE / (1 << 20);
      const mibs = mib / (r.ms / 1000);
      const scriptMs = ((m1.script - m0.script) * 1000) / mib;
      const taskMs = ((m1.task - m0.task) * 1000) / mib;
      console.log(`BENCH ${SERVER} | ${c.name} | ${piece >> 10} KiB | ${(r.ms / 1000).toFixed(2)} s | ${mibs.toFixed(1)} MiB/s each way | main thread ${taskMs.toFixed(1)} ms/MiB (script ${scriptMs.toFixed(1)})`);
      assert.ok(r.ok);
      assert.equal(r.got, SIZE);
      await page.close();
    });
  }
}

if (SERVER === "e2eserver") {
  // Baseline: the same echo over a plain WebSocket, without the protocol.
  for (const [name, url] of [["ws://", () => `http://${HOST}:${srv.port}/`], ["wss://", () => `https://127.0.0.1:${srv.port}/`]] as const) {
    test(`bench baseline: plain WebSocket echo over ${name}, 64 KiB messages, ${SIZE >> 20} MiB`, { timeout: 600_000 }, async () => {
      const page = await browser.ctx.newPage();
      page.setDefaultTimeout(600_000);
      await page.goto(url());
      const r = await page.evaluate(async (size) => {
        const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/raw-echo`);
        ws.binaryType = "arraybuffer";
        await new Promise((res) => (ws.onopen = res));
        const piece = 64 << 10;
        const chunk = new Uint8Array(piece);
        let got = 0;
        const t0 = performance.now();
        const done = new Promise<void>((res) => (ws.onmessage = (e) => {
          got += (e.data as ArrayBuffer).byteLength;
          if (got >= size) res();
        }));
        for (let o = 0; o < size; o += piece) {
          ws.send(chunk);
          while (ws.bufferedAmount > 1 << 20 || o - got > 4 << 20) await new Promise((res) => setTimeout(res, 1));
        }
        await done;
        const ms = performance.now() - t0;
        ws.close();
        return { got, ms };
      }, SIZE);
      console.log(`BENCH baseline | plain WebSocket ${name} | 64 KiB | ${(r.ms / 1000).toFixed(2)} s | ${(SIZE / (1 << 20) / (r.ms / 1000)).toFixed(1)} MiB/s each way`);
      assert.equal(r.got, SIZE);
      await page.close();
    });
  }
}
