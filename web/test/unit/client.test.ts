// The client state machine against the in-memory JavaScript responder of
// test/helpers/fakenet.ts (the real gateway is used by the browser tests).

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { base64urlEncode } from "../../src/bytes.js";
import { connect, type DualgateSocket } from "../../src/client.js";
import type { ConnectOptions } from "../../src/options.js";
import type { DualgateCloseEvent, DualgateMessageEvent, ResumedEvent, StateChangeEvent } from "../../src/events.js";
import { keyPair } from "../../src/noise.js";
import { FakeWebSocket, TestServer } from "../helpers/fakenet.js";

let n = 0;
const open: DualgateSocket[] = [];
afterEach(() => {
  // Every socket ends with its test, so no timer keeps the runner alive.
  for (const ws of open.splice(0)) if (ws.state !== "closed") ws.close(4000, "test over");
});

function setup(opts: ConnectOptions = {}, pin = false) {
  const url = `ws://fake/${++n}`;
  const srv = new TestServer(url);
  const ws = connect(url, {
    WebSocket: FakeWebSocket as unknown as ConnectOptions["WebSocket"],
    lifecycle: false,
    backoff: { initialDelay: 5, maxDelay: 20 },
    serverKey: pin ? base64urlEncode(srv.staticKey.pub) : undefined,
    ...opts,
  });
  open.push(ws);
  const states: string[] = [];
  ws.addEventListener("statechange", (e: StateChangeEvent) => states.push(e.state));
  return { srv, ws, states };
}

function closed(ws: DualgateSocket): Promise<DualgateCloseEvent> {
  return new Promise((r) => ws.addEventListener("close", r, { once: true }));
}

function collect(ws: DualgateSocket): (string | Uint8Array)[] {
  const got: (string | Uint8Array)[] = [];
  ws.addEventListener("message", (e: DualgateMessageEvent) => got.push(e.data));
  return got;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const [cipher, pin] of [["chacha20-poly1305", false], ["aes-gcm", true]] as const) {
  test(`open, echo text and binary, clean close (${cipher}, ${pin ? "NK" : "NN"})`, async () => {
    const { srv, ws, states } = setup({ cipher }, pin);
    const got = collect(ws);
    await ws.opened;
    assert.equal(ws.state, "open");
    assert.match(ws.sessionId!, /^[0-9a-f]{32}$/);
    assert.equal(ws.stats.pattern, pin ? "NK" : "NN");
    ws.send("héllo");
    ws.send(Uint8Array.of(1, 2, 3));
    await until(() => got.length === 2, "echoes");
    assert.deepEqual(got, ["héllo", Uint8Array.of(1, 2, 3)]);
    await ws.drain();
    assert.equal(ws.bufferedAmount, 0);
    const c = closed(ws);
    ws.close(1000, "bye");
    const ev = await c;
    assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1000, "bye", true]);
    assert.deepEqual(states, ["open", "closed"]);
    assert.equal(srv.sessions.size, 0, "server saw the close handshake");
    assert.throws(() => ws.send("x"), /closing or closed/);
  });
}

test("a bulk transfer survives repeated transport cuts byte for byte", async () => {
  const { srv, ws } = setup({ cipher: "chacha20-poly1305" });
  let resumed = 0;
  let replayed = 0;
  ws.addEventListener("resumed", (e: ResumedEvent) => {
    resumed++;
    replayed += e.replayedBytes;
  });
  await ws.opened;
  const total = 1 << 20;
  const data = new Uint8Array(total);
  for (let i = 0; i < total; i++) data[i] = (i * 131 + (i >> 11)) & 0xff;
  const got: Uint8Array[] = [];
  let gotLen = 0;
  ws.addEventListener("message", (e: DualgateMessageEvent) => {
    got.push(e.data as Uint8Array);
    gotLen += (e.data as Uint8Array).length;
  });
  const piece = 32 << 10;
  let cuts = 0;
  for (let o = 0; o < total; o += piece) {
    ws.send(data.subarray(o, o + piece));
    if ((o / piece) % 3 === 1) {
      // Alternate between the server cutting and the client dropping.
      if (cuts % 2 === 0) srv.cutAll();
      else ws.dropTransport();
      cuts++;
      await until(() => ws.state === "open" && resumed === cuts, `resume ${cuts}`);
    }
  }
  await until(() => gotLen >= total, "all echoes");
  const joined = new Uint8Array(gotLen);
  let o = 0;
  for (const g of got) {
    joined.set(g, o);
    o += g.length;
  }
  assert.equal(gotLen, total);
  assert.deepEqual(joined, data);
  assert.ok(cuts >= 10, `${cuts} cuts`);
  assert.equal(ws.stats.resumes, cuts);
  assert.ok(replayed >= 0 && ws.stats.replayedBytes === replayed);
  const c = closed(ws);
  ws.close();
  assert.equal((await c).code, 1000);
});

test("server-initiated close is answered and reported with its code", async () => {
  const { srv, ws } = setup();
  await ws.opened;
  await until(() => srv.sessions.size === 1, "CONFIRM at the server");
  const c = closed(ws);
  srv.closeSession(4011, "upstream closed");
  const ev = await c;
  assert.deepEqual([ev.code, ev.reason, ev.wasClean], [4011, "upstream closed", true]);
  await until(() => srv.sessions.size === 0, "server session gone");
});

test("pinned key mismatch is refused with 4008 and ends the session", async () => {
  const url = `ws://fake/${++n}`;
  new TestServer(url);
  const ws = connect(url, { WebSocket: FakeWebSocket as unknown as ConnectOptions["WebSocket"], lifecycle: false, serverKey: base64urlEncode(keyPair().pub) });
  const ev = await closed(ws);
  assert.equal(ev.code, 4008);
  await assert.rejects(ws.opened, /4008/);
  assert.equal(ws.state, "closed");
});

test("an expired session is reported with 4001", async () => {
  const { srv, ws } = setup();
  await ws.opened;
  await until(() => srv.sessions.size === 1, "CONFIRM at the server");
  for (const s of srv.sessions.values()) s.expired = true;
  const c = closed(ws);
  srv.cutAll();
  const ev = await c;
  assert.equal(ev.code, 4001);
  assert.equal(ev.wasClean, false);
});

test("the client gives up with 4001 after the server's detached TTL", async () => {
  const { srv, ws } = setup();
  srv.ttl = 1;
  await ws.opened;
  srv.unreachable = true;
  const c = closed(ws);
  srv.cutAll();
  const t0 = Date.now();
  const ev = await c;
  assert.equal(ev.code, 4001);
  assert.ok(Date.now() - t0 >= 900, "not before the TTL");
});

test("transient refusals are retried with backoff", async () => {
  const { srv, ws } = setup();
  srv.refuseNext = { code: 4006, reason: "too many sessions" };
  await ws.opened;
  assert.ok(srv.handshakes >= 2);
});

test("a half-open transport is detected by the dead-peer timeout and resumed", async () => {
  const { srv, ws } = setup({ heartbeatInterval: 100, deadPeerTimeout: 400 });
  await ws.opened;
  const r = new Promise<ResumedEvent>((res) => ws.addEventListener("resumed", res, { once: true }));
  const tc = new Promise<Event>((res) => ws.addEventListener("transportclose", res, { once: true }));
  srv.silent = true;
  await tc;
  srv.silent = false;
  srv.cutAll(); // the server side of the dead transport goes away too
  await r;
  const rtt = await ws.ping();
  assert.ok(rtt >= 0);
  ws.close();
  await closed(ws);
});

test("the URL provider is called for every transport", async () => {
  const url = `ws://fake/${++n}`;
  const srv = new TestServer(url);
  let calls = 0;
  const ws = connect(async () => {
    calls++;
    return url;
  }, { WebSocket: FakeWebSocket as unknown as ConnectOptions["WebSocket"], lifecycle: false });
  open.push(ws);
  await ws.opened;
  await until(() => srv.sessions.size === 1, "CONFIRM at the server");
  srv.cutAll();
  await new Promise((r) => ws.addEventListener("resumed", r, { once: true }));
  assert.equal(calls, 2);
  ws.close();
  await closed(ws);
});

test("async iteration yields messages until the session ends", async () => {
  const { ws } = setup();
  await ws.opened;
  ws.send("a");
  ws.send("b");
  const got: (string | Uint8Array)[] = [];
  for await (const m of ws) {
    got.push(m);
    if (got.length === 2) ws.close();
  }
  assert.deepEqual(got, ["a", "b"]);
});

test("close before open ends at once; bad close codes are refused", async () => {
  const { ws } = setup();
  assert.throws(() => ws.close(1006), /close code/);
  const c = closed(ws);
  ws.close(4000, "never mind");
  assert.equal((await c).code, 4000);
});

test("oversized incoming messages end the session with 1009", async () => {
  const { ws } = setup({ maxMessageSize: 1000 });
  await ws.opened;
  const c = closed(ws);
  ws.send(new Uint8Array(2000)); // echoed back, too big for us
  assert.equal((await c).code, 1009);
});

test("a close whose answer was lost ends cleanly when the resume finds the session gone (4000)", async () => {
  const { srv, ws } = setup();
  await ws.opened;
  await until(() => srv.sessions.size === 1, "CONFIRM at the server");
  srv.swallowCloseAnswer = true;
  const c = closed(ws);
  ws.close(1000, "bye");
  const ev = await c;
  assert.deepEqual([ev.code, ev.reason, ev.wasClean], [1000, "bye", true]);
  assert.ok(srv.handshakes >= 2, "the client resumed to get the answer");
});

test("a session that never opens ends after giveUpAfter with 1006", async () => {
  const { srv, ws } = setup({ giveUpAfter: 300 });
  srv.unreachable = true;
  const ev = await closed(ws);
  assert.equal(ev.code, 1006);
  await assert.rejects(ws.opened, /1006/);
});

test("a WebSocket constructor that throws ends the session (1008)", async () => {
  class Throwing {
    constructor() {
      throw new SyntaxError("bad URL");
    }
  }
  const ws = connect("nonsense", { WebSocket: Throwing as unknown as ConnectOptions["WebSocket"], lifecycle: false });
  const ev = await closed(ws);
  assert.equal(ev.code, 1008);
  assert.match(ev.reason, /bad URL/);
});
