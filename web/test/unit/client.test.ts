// The client state machine against the in-memory JavaScript responder of
// test/helpers/fakenet.ts (the real gateway is used by the browser tests).

import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { base64urlEncode } from "../../src/bytes.js";
import { connect, offersPlainInTLS, type DualgateSocket } from "../../src/client.js";
import { TAG_LEN } from "../../src/constants.js";
import { type ConnectOptions, normalise } from "../../src/options.js";
import type { DualgateCloseEvent, DualgateMessageEvent, ResumedEvent, StateChangeEvent } from "../../src/events.js";
import { keyPair } from "../../src/noise.js";
import { FakeWebSocket, TestServer } from "../helpers/fakenet.js";

let n = 0;
const open: DualgateSocket[] = [];
afterEach(() => {
  // Every socket ends with its test, so no timer keeps the runner alive.
  for (const ws of open.splice(0)) if (ws.state !== "closed") ws.close(4000, "test over");
});

function setup(opts: ConnectOptions = {}, pin = false, scheme: "ws" | "wss" = "ws") {
  const url = `${scheme}://fake/${++n}`;
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

for (const scheme of ["ws", "wss"] as const) test(`a bulk transfer survives repeated transport cuts byte for byte (${scheme}: ${scheme === "wss" ? "plain-in-TLS" : "sealed"} frames)`, async () => {
  const { srv, ws } = setup({ cipher: "chacha20-poly1305" }, false, scheme);
  let plainTransports = 0;
  const countPlain = () => void (ws.plainInTLS && plainTransports++);
  ws.addEventListener("open", countPlain);
  ws.addEventListener("resumed", countPlain);
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
  assert.equal(plainTransports, scheme === "wss" ? cuts + 1 : 0, "transports in frame mode 1");
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

// ---- plain-in-TLS frames (docs/protocol.md §5.7) ----

test("offersPlainInTLS: only wss: (or https:, which browsers open as wss:) with NN and without alwaysSeal", () => {
  const key = base64urlEncode(keyPair().pub);
  const WebSocket = FakeWebSocket as unknown as ConnectOptions["WebSocket"];
  const nn = normalise({ WebSocket });
  const cases: [string, ConnectOptions, boolean][] = [
    ["wss://gw.example/stream", {}, true],
    ["WSS://gw.example:8443/stream?t=1", {}, true],
    ["https://gw.example/stream", {}, true],
    ["ws://gw.example/stream", {}, false],
    ["http://gw.example/stream", {}, false],
    ["wss://gw.example/stream", { serverKey: key }, false],
    ["wss://gw.example/stream", { alwaysSeal: true }, false],
    ["wss://gw.example/stream", { alwaysSeal: false }, true],
    ["/stream", {}, false], // no page to resolve against in Node
    ["not a url", {}, false],
  ];
  for (const [url, o, want] of cases) assert.equal(offersPlainInTLS(url, normalise({ WebSocket, ...o })), want, `${url} ${JSON.stringify(o)}`);
  // A relative URL takes the page's scheme.
  const g = globalThis as { location?: unknown };
  g.location = { href: "https://gw.example/app/" };
  try {
    assert.equal(offersPlainInTLS("/stream", nn), true);
    g.location = { href: "http://gw.example/app/" };
    assert.equal(offersPlainInTLS("/stream", nn), false);
  } finally {
    delete g.location;
  }
});

/** checkWire asserts how each recorded message after the handshake travelled: CONFIRM always sealed, the rest plain iff plain. */
function checkWire(srv: TestServer, plain: boolean): void {
  assert.ok(srv.wire.some((w) => w.dir === "c2s" && w.frame[0] === 0x11), "client DATA recorded");
  assert.ok(srv.wire.some((w) => w.dir === "s2c" && w.frame[0] === 0x11), "server DATA recorded");
  for (const w of srv.wire) {
    const what = `${w.dir} frame 0x${w.frame[0]!.toString(16)} on transport ${w.conn}`;
    if (plain && w.frame[0] !== 0x10) {
      assert.deepEqual(w.msg, w.frame, `${what} is the plain frame`);
    } else {
      assert.equal(w.msg.length, w.frame.length + TAG_LEN, `${what} is sealed`);
      assert.notDeepEqual(w.msg.subarray(0, w.frame.length), w.frame, `${what} is encrypted`);
    }
  }
}

test("wss:// without a pinned key: PLAIN_IN_TLS, frame mode 1, CONFIRM sealed and every later frame plain both ways", async () => {
  const { srv, ws } = setup({}, false, "wss");
  srv.record = true;
  const got = collect(ws);
  await ws.opened;
  assert.equal(ws.plainInTLS, true);
  ws.send("héllo");
  ws.send(Uint8Array.of(1, 2, 3));
  await until(() => got.length === 2, "echoes");
  assert.deepEqual(got, ["héllo", Uint8Array.of(1, 2, 3)]);
  await ws.ping();
  assert.deepEqual(srv.hellos.map((h) => h.plainInTLS), [true]);
  const first = srv.wire.find((w) => w.dir === "c2s")!;
  assert.equal(first.frame[0], 0x10, "CONFIRM comes first");
  checkWire(srv, true);
  const c = closed(ws);
  ws.close(1000, "bye");
  assert.deepEqual([(await c).code, ws.plainInTLS], [1000, false]);
  assert.equal(srv.sessions.size, 0, "the close exchange went through in plain frames");
});

for (const [name, scheme, opts, pin] of [
  ["ws://", "ws", {}, false],
  ["wss:// with serverKey (NK)", "wss", {}, true],
  ["wss:// with alwaysSeal", "wss", { alwaysSeal: true }, false],
] as const) {
  test(`${name}: no PLAIN_IN_TLS, every frame sealed`, async () => {
    const { srv, ws } = setup(opts, pin, scheme);
    srv.record = true;
    const got = collect(ws);
    await ws.opened;
    assert.equal(ws.plainInTLS, false);
    ws.send("sealed");
    await until(() => got.length === 1, "echo");
    assert.deepEqual(srv.hellos.map((h) => h.plainInTLS ?? false), [false]);
    checkWire(srv, false);
  });
}

test("a server that answers frame mode 0 to the offer keeps the transport sealed", async () => {
  const { srv, ws } = setup({}, false, "wss");
  srv.record = true;
  srv.frameMode = 0;
  const got = collect(ws);
  await ws.opened;
  assert.equal(ws.plainInTLS, false);
  ws.send("sealed anyway");
  await until(() => got.length === 1, "echo");
  assert.deepEqual(srv.hellos.map((h) => h.plainInTLS), [true]);
  checkWire(srv, false);
});

for (const [name, scheme, tamper] of [
  ["a 33-byte payload to a hello without PLAIN_IN_TLS", "ws", (p: Uint8Array) => Uint8Array.of(...p, 0)],
  ["a 32-byte payload to a hello with PLAIN_IN_TLS", "wss", (p: Uint8Array) => p.subarray(0, 32)],
  ["frame mode 2", "wss", (p: Uint8Array) => Uint8Array.of(...p.subarray(0, 32), 2)],
  ["frame mode 255", "wss", (p: Uint8Array) => Uint8Array.of(...p.subarray(0, 32), 255)],
] as const) {
  test(`server hello with ${name} is a protocol error (1002)`, async () => {
    const { srv, ws } = setup({}, false, scheme);
    srv.tamperPayload = tamper;
    let opened = false;
    ws.addEventListener("open", () => (opened = true));
    const ev = await closed(ws);
    assert.equal(ev.code, 1002, ev.reason);
    assert.equal(opened, false);
    assert.equal(srv.handshakes, 1, "a protocol error is final");
  });
}

test("the frame mode is decided per transport: wss:// plain, a resume over ws:// sealed, then plain again", async () => {
  const base = `fake/${++n}`;
  const srv = new TestServer(`wss://${base}`);
  FakeWebSocket.nets.set(`ws://${base}`, srv);
  srv.record = true;
  const schemes = ["wss", "ws", "wss"];
  let calls = 0;
  const ws = connect(() => `${schemes[Math.min(calls++, schemes.length - 1)]}://${base}`, {
    WebSocket: FakeWebSocket as unknown as ConnectOptions["WebSocket"], lifecycle: false, backoff: { initialDelay: 5, maxDelay: 20 },
  });
  open.push(ws);
  const got = collect(ws);
  const modes: boolean[] = [];
  const note = () => void modes.push(ws.plainInTLS);
  ws.addEventListener("open", note);
  ws.addEventListener("resumed", note);
  await ws.opened;
  for (let i = 0; i < 3; i++) {
    ws.send(`message ${i}`);
    await until(() => got.length === i + 1, `echo ${i}`);
    if (i < 2) {
      const r = new Promise((res) => ws.addEventListener("resumed", res, { once: true }));
      srv.cutAll();
      await r;
    }
  }
  assert.deepEqual(got, ["message 0", "message 1", "message 2"]);
  assert.deepEqual(modes, [true, false, true]);
  assert.deepEqual(srv.hellos.map((h) => [h.sessionId !== undefined, h.plainInTLS ?? false]), [[false, true], [true, false], [true, true]]);
  for (const conn of [1, 2, 3]) {
    const plain = conn !== 2;
    for (const w of srv.wire.filter((x) => x.conn === conn)) {
      const sealed = !plain || w.frame[0] === 0x10;
      assert.equal(w.msg.length, w.frame.length + (sealed ? TAG_LEN : 0), `transport ${conn} ${w.dir} 0x${w.frame[0]!.toString(16)}`);
    }
  }
  ws.close();
  await closed(ws);
});
