import assert from "node:assert/strict";
import { test } from "node:test";
import { base64urlDecode, base64urlEncode, fromHex, getU64, putU64, toHex } from "../../src/bytes.js";
import { FRAME_ACK, FRAME_CLOSE, FRAME_CONFIRM, FRAME_DATA, FRAME_PING, FRAME_PONG } from "../../src/constants.js";
import {
  type Frame, ProtocolError, decodeFrame, decodeHelloHeader, decodeHelloPayload, decodeRefuse,
  decodeServerPayload, encodeFrame, encodeHelloHeader, encodeHelloPayload, encodeRefuse,
  encodeServerPayload, truncReason,
} from "../../src/frame.js";

const frames: { name: string; f: Frame; len: number }[] = [
  { name: "confirm", f: { type: FRAME_CONFIRM, offset: 12345678901 }, len: 9 },
  { name: "ack", f: { type: FRAME_ACK, offset: 2 ** 53 - 1 }, len: 9 },
  { name: "ping", f: { type: FRAME_PING, value: 7n }, len: 9 },
  { name: "pong", f: { type: FRAME_PONG, value: 0xffffffffffffffffn }, len: 9 },
  { name: "data text fin", f: { type: FRAME_DATA, flags: 3, offset: 1 << 20, ack: 99, payload: new Uint8Array([104, 105]) }, len: 20 },
  { name: "data max", f: { type: FRAME_DATA, flags: 0, offset: 0, ack: 0, payload: new Uint8Array(65501).fill(7) }, len: 65519 },
  { name: "close", f: { type: FRAME_CLOSE, offset: 42, code: 4011, reason: "upstream closed ✓" }, len: 11 + 19 },
  { name: "close empty", f: { type: FRAME_CLOSE, offset: 0, code: 1000, reason: "" }, len: 11 },
];

test("frames round-trip with their exact sizes", () => {
  for (const { name, f, len } of frames) {
    const b = encodeFrame(f);
    assert.equal(b.length, len, name);
    assert.deepEqual(decodeFrame(b), f, name);
  }
});

test("frame encodings match the spec byte layout", () => {
  assert.equal(toHex(encodeFrame({ type: FRAME_ACK, offset: 0x0102030405 })), "120000000102030405");
  assert.equal(
    toHex(encodeFrame({ type: FRAME_DATA, flags: 1, offset: 2, ack: 3, payload: Uint8Array.of(0xaa) })),
    "1101" + "0000000000000002" + "0000000000000003" + "aa",
  );
  assert.equal(toHex(encodeFrame({ type: FRAME_CLOSE, offset: 5, code: 1000, reason: "ok" })), "15" + "0000000000000005" + "03e8" + "6f6b");
});

test("every truncated frame is rejected with a ProtocolError", () => {
  for (const { name, f } of frames) {
    const b = encodeFrame(f);
    const min = f.type === FRAME_CLOSE ? 11 : f.type === FRAME_DATA ? 19 : 9;
    for (let n = 0; n < min; n++) assert.throws(() => decodeFrame(b.subarray(0, n)), ProtocolError, `${name} truncated to ${n}`);
  }
});

test("malformed frames are rejected", () => {
  const bad: [string, string][] = [
    ["unknown type", "16" + "00".repeat(8)],
    ["long ack", "12" + "00".repeat(9)],
    ["empty data", "11" + "01" + "00".repeat(16)],
    ["reserved data flag", "11" + "04" + "00".repeat(16) + "aa"],
    ["u64 beyond 2^53", "12" + "ff".repeat(8)],
    ["close bad utf8", "15" + "00".repeat(8) + "03e8" + "ff"],
    ["close reason too long", "15" + "00".repeat(8) + "03e8" + "61".repeat(124)],
  ];
  for (const [name, hex] of bad) assert.throws(() => decodeFrame(fromHex(hex)), ProtocolError, name);
  assert.throws(() => decodeFrame(new Uint8Array(18 + 65502).fill(0x11)), ProtocolError, "data too long");
});

test("random garbage never throws anything but ProtocolError", () => {
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20000; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 40));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    if (b.length > 0 && rnd() < 0.7) b[0] = 0x10 + Math.floor(rnd() * 6);
    for (const dec of [decodeFrame, (x: Uint8Array) => decodeHelloHeader(x), (x: Uint8Array) => decodeServerPayload(x), (x: Uint8Array) => decodeServerPayload(x, true), decodeRefuse]) {
      try {
        dec(b);
      } catch (e) {
        assert.ok(e instanceof ProtocolError, `unexpected ${String(e)}`);
      }
    }
  }
});

test("truncReason cuts on a code point boundary", () => {
  const s = "é".repeat(100); // 200 bytes
  const t = truncReason(s);
  assert.equal(new TextEncoder().encode(t).length, 122);
  assert.equal(truncReason("short"), "short");
});

test("client hello header round-trips, new and resume", () => {
  const n = encodeHelloHeader({ version: 1, suite: 2, pattern: 1 });
  assert.equal(toHex(n), "0101020100");
  const id = fromHex("00112233445566778899aabbccddeeff");
  const r = encodeHelloHeader({ version: 1, suite: 1, pattern: 2, sessionId: id });
  assert.equal(r.length, 21);
  const full = new Uint8Array([...r, ...new Uint8Array(60)]);
  const d = decodeHelloHeader(full);
  assert.deepEqual(d.header, { version: 1, suite: 1, pattern: 2, sessionId: id });
  assert.equal(d.headerLen, 21);
  assert.equal(d.noise.length, 60);
  for (let k = 0; k < 21 + 32; k++) assert.throws(() => decodeHelloHeader(full.subarray(0, k)), ProtocolError);
  for (const flags of ["04", "08", "80", "07"]) {
    assert.throws(() => decodeHelloHeader(fromHex("01010201" + flags + "00".repeat(40))), ProtocolError, `reserved flag ${flags}`);
  }
});

test("client hello header: PLAIN_IN_TLS is flag bit 1, NN only (§4.1)", () => {
  assert.equal(toHex(encodeHelloHeader({ version: 1, suite: 2, pattern: 1, plainInTLS: true })), "0101020102");
  assert.equal(toHex(encodeHelloHeader({ version: 1, suite: 2, pattern: 1, plainInTLS: false })), "0101020100");
  const id = fromHex("00112233445566778899aabbccddeeff");
  const r = encodeHelloHeader({ version: 1, suite: 1, pattern: 1, sessionId: id, plainInTLS: true });
  assert.equal(toHex(r.subarray(0, 5)), "0101010103", "RESUME | PLAIN_IN_TLS");
  assert.deepEqual(decodeHelloHeader(new Uint8Array([...r, ...new Uint8Array(32)])).header, { version: 1, suite: 1, pattern: 1, sessionId: id, plainInTLS: true });
  assert.deepEqual(decodeHelloHeader(fromHex("0101020102" + "00".repeat(32))).header, { version: 1, suite: 2, pattern: 1, plainInTLS: true });
  assert.throws(() => encodeHelloHeader({ version: 1, suite: 2, pattern: 2, plainInTLS: true }), RangeError);
  assert.throws(() => decodeHelloHeader(fromHex("0101020202" + "00".repeat(32))), ProtocolError, "PLAIN_IN_TLS with NK");
  assert.throws(() => decodeHelloHeader(fromHex("0101020203" + "00".repeat(48))), ProtocolError, "PLAIN_IN_TLS with NK on resume");
});

test("server payload: 33 bytes with the frame mode exactly when the hello had PLAIN_IN_TLS (§4.2)", () => {
  const sp = { sessionId: new Uint8Array(16).fill(3), delivered: 77, window: 1 << 20, ttl: 120 };
  for (const frameMode of [0, 1]) {
    const b = encodeServerPayload({ ...sp, frameMode });
    assert.equal(b.length, 33);
    assert.equal(b[32], frameMode);
    assert.deepEqual(b.subarray(0, 32), encodeServerPayload(sp));
    assert.deepEqual(decodeServerPayload(b, true), { ...sp, frameMode });
    assert.throws(() => decodeServerPayload(b, false), ProtocolError, "33 bytes without the flag");
    assert.throws(() => decodeServerPayload(b), ProtocolError, "33 bytes, flag defaults to off");
    for (let k = 0; k < 33; k++) assert.throws(() => decodeServerPayload(b.subarray(0, k), true), ProtocolError, `truncated to ${k}`);
    assert.throws(() => decodeServerPayload(Uint8Array.of(...b, 0), true), ProtocolError, "34 bytes");
  }
  assert.throws(() => decodeServerPayload(encodeServerPayload(sp), true), ProtocolError, "32 bytes with the flag");
  for (const mode of [2, 3, 0x80, 0xff]) {
    assert.throws(() => decodeServerPayload(encodeServerPayload({ ...sp, frameMode: mode }), true), ProtocolError, `mode ${mode}`);
  }
  assert.equal(decodeServerPayload(encodeServerPayload(sp)).frameMode, undefined);
});

test("hello and server payloads round-trip and check windows", () => {
  assert.deepEqual(decodeHelloPayload(encodeHelloPayload({ window: 1 << 18 }), false), { window: 1 << 18 });
  assert.deepEqual(decodeHelloPayload(encodeHelloPayload({ window: 1 << 14, counter: 9 }), true), { window: 1 << 14, counter: 9 });
  assert.throws(() => decodeHelloPayload(encodeHelloPayload({ window: 1000 }), false), ProtocolError);
  assert.throws(() => decodeHelloPayload(encodeHelloPayload({ window: 1 << 18 }), true), ProtocolError);
  const sp = { sessionId: new Uint8Array(16).fill(3), delivered: 77, window: 1 << 20, ttl: 120 };
  assert.deepEqual(decodeServerPayload(encodeServerPayload(sp)), sp);
  assert.throws(() => decodeServerPayload(encodeServerPayload({ ...sp, window: (16 << 20) + 1 })), ProtocolError);
  for (let k = 0; k < 32; k++) assert.throws(() => decodeServerPayload(encodeServerPayload(sp).subarray(0, k)), ProtocolError);
});

test("refuse round-trips and rejects length mismatches", () => {
  const b = encodeRefuse({ code: 4004, reason: "versions=1" });
  assert.equal(toHex(b.subarray(0, 4)), "030fa40a");
  assert.deepEqual(decodeRefuse(b), { code: 4004, reason: "versions=1" });
  for (let k = 0; k < b.length; k++) assert.throws(() => decodeRefuse(b.subarray(0, k)), ProtocolError);
  assert.throws(() => decodeRefuse(new Uint8Array([...b, 0])), ProtocolError);
});

test("base64url and u64 helpers", () => {
  for (let n = 0; n < 40; n++) {
    const b = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
    assert.deepEqual(base64urlDecode(base64urlEncode(b)), b);
  }
  assert.equal(base64urlEncode(new Uint8Array(32)).length, 43);
  assert.throws(() => base64urlDecode("a+b/"));
  assert.throws(() => base64urlDecode("AB")); // non-canonical trailing bits
  const u = new Uint8Array(8);
  putU64(u, 0, 2 ** 53 - 1);
  assert.equal(getU64(u, 0), 2 ** 53 - 1);
  assert.throws(() => putU64(u, 0, 2 ** 53));
});
