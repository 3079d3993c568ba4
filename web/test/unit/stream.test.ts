import assert from "node:assert/strict";
import { test } from "node:test";
import { FRAME_ACK, FRAME_CLOSE, FRAME_DATA } from "../../src/constants.js";
import { type Frame, ProtocolError } from "../../src/frame.js";
import { Stream, type StreamEvent } from "../../src/stream.js";

function pair(window = 64 << 10, chunk = 1000) {
  const a = new Stream({ window, maxMessageSize: 1 << 20, chunkSize: chunk });
  const b = new Stream({ window, maxMessageSize: 1 << 20, chunkSize: chunk });
  a.peerWindow = window;
  b.peerWindow = window;
  a.attach(0);
  b.attach(0);
  return { a, b };
}

function drainTo(from: Stream, to: Stream, filter: (f: Frame) => boolean = () => true): StreamEvent[] {
  const evs: StreamEvent[] = [];
  for (let f = from.pull(); f; f = from.pull()) if (filter(f)) evs.push(...to.receive(f));
  return evs;
}

function messages(evs: StreamEvent[]) {
  return evs.filter((e) => e.kind === "message").map((e) => (e as { data: Uint8Array; text: boolean }));
}

test("messages split into chunks and reassemble with their boundaries and TEXT flags", () => {
  const { a, b } = pair();
  const big = new Uint8Array(3500).map((_, i) => i & 0xff);
  a.queueMessage(big, false);
  a.queueMessage(new TextEncoder().encode("héllo"), true);
  a.queueMessage(Uint8Array.of(1), false);
  const frames: Frame[] = [];
  for (let f = a.pull(); f; f = a.pull()) frames.push(f);
  assert.deepEqual(frames.map((f) => f.type === FRAME_DATA && [f.offset, f.flags, f.payload.length]), [
    [0, 0, 1000], [1000, 0, 1000], [2000, 0, 1000], [3000, 1, 500], [3500, 3, 6], [3506, 1, 1],
  ]);
  const evs = frames.flatMap((f) => b.receive(f));
  const m = messages(evs);
  assert.equal(m.length, 3);
  assert.deepEqual(m[0]!.data, big);
  assert.equal(m[1]!.text, true);
  assert.equal(new TextDecoder().decode(m[1]!.data), "héllo");
  assert.equal(b.delivered, 3507);
});

test("acks free the replay buffer and open the window", () => {
  const { a, b } = pair(16 << 10, 4096);
  a.queueMessage(new Uint8Array(40 << 10), false);
  const first: Frame[] = [];
  for (let f = a.pull(); f; f = a.pull()) first.push(f);
  assert.equal(first.length, 4, "window of 16 KiB allows four 4 KiB chunks");
  for (const f of first) b.receive(f);
  // b acknowledged a quarter of its window: an ACK is due immediately.
  const ack = b.pull();
  assert.equal(ack?.type, FRAME_ACK);
  assert.equal(a.bufferedAmount, 40 << 10);
  assert.deepEqual(a.receive(ack!), [{ kind: "acked" }]);
  assert.equal(a.bufferedAmount, (40 << 10) - (16 << 10));
  assert.ok(a.pull(), "window reopened");
});

test("the 20 ms rule: a pending ack is sent once requested", () => {
  const { a, b } = pair();
  a.queueMessage(Uint8Array.of(1, 2, 3), false);
  drainTo(a, b);
  assert.equal(b.pull(), null, "below a quarter window nothing is due yet");
  assert.ok(b.ackPending);
  b.requestAck();
  assert.deepEqual(b.pull(), { type: FRAME_ACK, offset: 3 });
  assert.equal(b.ackPending, false);
});

test("resume: retransmission from the peer's delivered offset, mid-chunk, with flags; duplicates dropped", () => {
  const { a, b } = pair();
  a.queueMessage(new Uint8Array(2500).fill(7), false); // chunks 1000,1000,500(FIN)
  a.queueMessage(Uint8Array.of(9, 9), true);
  const sent: Frame[] = [];
  for (let f = a.pull(); f; f = a.pull()) sent.push(f);
  // Transport dies after the first chunk and a half arrived (here: the first chunk).
  b.receive(sent[0]!);
  assert.equal(b.delivered, 1000);
  // The peer reports 1000 delivered; a resends everything from there.
  assert.equal(a.attach(1500 - 500), 2502 - 1000);
  const re: Frame[] = [];
  for (let f = a.pull(); f; f = a.pull()) re.push(f);
  assert.deepEqual(re.map((f) => f.type === FRAME_DATA && [f.offset, f.flags, f.payload.length]), [[1000, 0, 1000], [2000, 1, 500], [2500, 3, 2]]);
  // An overlapping old frame still in flight: its prefix is dropped.
  const m = messages([...b.receive(sent[1]!), ...re.flatMap((f) => b.receive(f))]);
  assert.equal(m.length, 2);
  assert.equal(m[0]!.data.length, 2500);
  assert.equal(b.duplicateBytes, 1000);
});

test("resume from a mid-chunk offset carries the chunk's flags", () => {
  const { a, b } = pair();
  a.queueMessage(new Uint8Array(800).fill(1), true);
  const f0 = a.pull() as Extract<Frame, { type: 0x11 }>;
  const part = { ...f0, payload: f0.payload.subarray(0, 300), flags: 2 };
  b.receive(part);
  a.attach(300);
  const r = a.pull() as Extract<Frame, { type: 0x11 }>;
  assert.deepEqual([r.offset, r.flags, r.payload.length], [300, 3, 500]);
  assert.equal(messages(b.receive(r))[0]!.data.length, 800);
});

test("attach rejects offsets outside what is held (4003)", () => {
  const { a } = pair();
  a.queueMessage(new Uint8Array(100), false);
  a.pull();
  a.attach(50);
  assert.throws(() => a.attach(40), (e: unknown) => e instanceof ProtocolError && e.code === 4003);
  assert.throws(() => a.attach(101), (e: unknown) => e instanceof ProtocolError && e.code === 4003);
});

test("protocol violations: gap, TEXT change, window, oversize, bad ack", () => {
  const mk = () => pair(16 << 10).b;
  const d = (offset: number, flags: number, n: number, ack = 0): Frame => ({ type: FRAME_DATA, flags, offset, ack, payload: new Uint8Array(n) });
  assert.throws(() => mk().receive(d(5, 1, 1)), ProtocolError, "gap");
  const b1 = mk();
  b1.receive(d(0, 2, 1));
  assert.throws(() => b1.receive(d(1, 1, 1)), ProtocolError, "TEXT change");
  assert.throws(() => mk().receive(d(0, 0, (16 << 10) + 1)), ProtocolError, "window");
  const small = new Stream({ window: 16 << 10, maxMessageSize: 10, chunkSize: 100 });
  assert.throws(() => small.receive(d(0, 1, 11)), (e: unknown) => e instanceof ProtocolError && e.code === 1009);
  assert.throws(() => mk().receive({ type: FRAME_ACK, offset: 1 }), ProtocolError, "ack beyond sent");
  assert.throws(() => mk().receive(d(0, 3, 2).type === FRAME_DATA ? { type: FRAME_DATA, flags: 3, offset: 0, ack: 0, payload: Uint8Array.of(0xff, 0xfe) } : d(0, 0, 0)), ProtocolError, "bad UTF-8");
});

test("close handshake initiated locally: data first, then CLOSE; answer ends the stream", () => {
  const { a, b } = pair();
  a.queueMessage(Uint8Array.of(1, 2), false);
  a.close(1000, "bye");
  assert.throws(() => a.queueMessage(Uint8Array.of(3), false));
  const evs = drainTo(a, b);
  assert.deepEqual(evs.map((e) => e.kind), ["message", "peerclose"]);
  assert.throws(() => b.queueMessage(Uint8Array.of(5), false), /send after close/, "b is answering: no new messages");
  const back = drainTo(b, a);
  assert.ok(back.some((e) => e.kind === "over"));
  assert.ok(a.over && b.over);
});

test("close survives a resume: CLOSE is sent again and a duplicate is ignored", () => {
  const { a, b } = pair();
  a.close(4000, "done");
  const c1 = a.pull();
  assert.equal(c1?.type, FRAME_CLOSE);
  assert.equal(a.pull(), null);
  a.attach(0);
  const c2 = a.pull();
  assert.deepEqual(c2, c1);
  assert.deepEqual(b.receive(c1!).map((e) => e.kind), ["peerclose"]);
  assert.deepEqual(b.receive(c2!), [], "the same CLOSE again is ignored");
  assert.throws(() => b.receive({ type: FRAME_CLOSE, offset: 1, code: 4000, reason: "" }), ProtocolError);
});

test("CLOSE before the last DATA waits for the data", () => {
  const { a, b } = pair();
  a.queueMessage(Uint8Array.of(1, 2, 3), false);
  a.close(1000, "");
  const data = a.pull()!;
  const close = a.pull()!;
  assert.deepEqual(b.receive(close), [], "CLOSE with final 3 while 0 delivered");
  assert.deepEqual(b.receive(data).map((e) => e.kind), ["message", "peerclose"]);
  assert.throws(() => b.receive({ type: FRAME_DATA, flags: 1, offset: 3, ack: 0, payload: Uint8Array.of(1) }), ProtocolError, "DATA beyond final");
});

test("randomised: both directions deliver every message exactly once across many lossy resumes", () => {
  let seed = 42;
  const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  for (let round = 0; round < 20; round++) {
    const { a, b } = pair(16 << 10, 1 + Math.floor(rnd() * 5000));
    const sent: [Uint8Array[], Uint8Array[]] = [[], []];
    const got: [Uint8Array[], Uint8Array[]] = [[], []];
    const ends = [a, b] as const;
    for (let step = 0; step < 300; step++) {
      const i = rnd() < 0.5 ? 0 : 1;
      const r = rnd();
      if (r < 0.3) {
        const m = new Uint8Array(1 + Math.floor(rnd() * 9000)).map(() => Math.floor(rnd() * 256));
        ends[i].queueMessage(m, false);
        sent[i].push(m);
      } else if (r < 0.95) {
        // Move some frames from i to the other side, in order.
        const n = Math.floor(rnd() * 6);
        for (let k = 0; k < n; k++) {
          const f = ends[i].pull();
          if (!f) break;
          for (const ev of ends[1 - i]!.receive(f)) if (ev.kind === "message") got[1 - i]!.push(ev.data);
        }
        if (rnd() < 0.3) ends[i].requestAck();
      } else {
        // The transport dies: frames in flight are lost (never pulled = never sent).
        // Drop a few pulled-but-undelivered frames too, then resume both ways.
        for (let k = Math.floor(rnd() * 4); k > 0; k--) ends[i].pull();
        const da = a.delivered;
        const db = b.delivered;
        a.attach(db);
        b.attach(da);
      }
    }
    // Drain: a final resume, then move everything (acks included) until quiet.
    a.attach(b.delivered);
    b.attach(a.delivered);
    for (let quiet = 0; quiet < 3; ) {
      let moved = false;
      for (const i of [0, 1] as const) {
        ends[i].requestAck();
        for (let f = ends[i].pull(); f; f = ends[i].pull()) {
          moved = true;
          for (const ev of ends[1 - i]!.receive(f)) if (ev.kind === "message") got[1 - i]!.push(ev.data);
        }
      }
      quiet = moved ? 0 : quiet + 1;
    }
    for (const i of [0, 1] as const) {
      assert.equal(got[1 - i]!.length, sent[i]!.length, `round ${round}: messages from ${i}`);
      sent[i]!.forEach((m, k) => assert.deepEqual(got[1 - i]![k], m, `round ${round} message ${k}`));
      assert.equal(ends[i].bufferedAmount, 0, "everything acknowledged");
    }
  }
});
