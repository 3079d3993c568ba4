// The JS codecs and handshakes checked against the Go test vectors in
// resume/testdata/vectors.json (normative with docs/protocol.md).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { base64urlDecode, concat, fromHex, toHex, utf8 } from "../../src/bytes.js";
import { FRAME_MODE_PLAIN, PROLOGUE_PREFIX, type PatternId, type SuiteId } from "../../src/constants.js";
import {
  ProtocolError, decodeFrame, decodeHelloHeader, decodeHelloPayload, decodeRefuse, decodeServerPayload,
  encodeFrame, encodeHelloHeader, encodeHelloPayload, encodeRefuse, encodeServerPayload, type Frame, type ServerPayload,
} from "../../src/frame.js";
import { Handshake, type HandshakeResult, deriveResumeSecret, keyPair, protocolName } from "../../src/noise.js";

interface VFrame { name: string; type: string; flags: number; num: number; ack: number; code: number; payload_hex: string; plaintext: string; ciphertext?: string }
interface VHandshake {
  protocol_name: string; client_ephemeral_private: string; server_ephemeral_private: string; client_window: number;
  resume_counter?: number; prologue: string; client_hello: string; client_hello_payload: string; session_id: string;
  server_delivered: number; server_window: number; ttl_seconds: number; server_hello_payload: string; server_hello: string;
  handshake_hash: string; client_to_server: VFrame[]; server_to_client: VFrame[];
}
interface Vectors {
  version: number; server_static_private: string; server_static_public: string; server_static_public_b64url: string;
  frames: VFrame[]; refuse: { code: number; reason: string; message: string }[];
  sessions: VSession[];
}
/** VSession is one session; plain_in_tls and frame_mode are set on the plain-in-TLS sessions only (§5.7). */
interface VSession {
  name: string; suite: number; pattern: number; plain_in_tls?: boolean; frame_mode?: number;
  first: VHandshake; resume_secret: string; resume: VHandshake;
}
/** Mode is how a session's transports run: the hello flag and the server's frame mode (absent without the flag). */
interface Mode { plainInTLS: boolean; frameMode?: number }

const root = process.env.DUALGATE_WEB_ROOT ?? process.cwd();
const file = path.join(root, "..", "resume", "testdata", "vectors.json");
const v = JSON.parse(readFileSync(file, "utf8")) as Vectors;
const EMPTY = new Uint8Array(0);
const TYPES: Record<string, number> = { CONFIRM: 0x10, DATA: 0x11, ACK: 0x12, PING: 0x13, PONG: 0x14, CLOSE: 0x15 };

/** expected builds the Frame a vector describes from its raw fields (num/ack via the plaintext when huge). */
function expected(f: VFrame): Frame | "beyond-2^53" {
  const pt = fromHex(f.plaintext);
  const type = TYPES[f.type]!;
  const dv = new DataView(pt.buffer);
  if (type === 0x13 || type === 0x14) return { type, value: dv.getBigUint64(1) } as Frame;
  if (!Number.isSafeInteger(f.num) || !Number.isSafeInteger(f.ack)) return "beyond-2^53";
  switch (type) {
    case 0x11:
      return { type, flags: f.flags, offset: f.num, ack: f.ack, payload: fromHex(f.payload_hex) };
    case 0x15:
      return { type, offset: f.num, code: f.code, reason: new TextDecoder().decode(fromHex(f.payload_hex)) };
    default:
      return { type, offset: f.num } as Frame;
  }
}

test("vectors: file is version 1 and the pinned key encodes as base64url", () => {
  assert.equal(v.version, 1);
  assert.equal(toHex(base64urlDecode(v.server_static_public_b64url)), v.server_static_public);
  assert.equal(toHex(keyPair(fromHex(v.server_static_private)).pub), v.server_static_public);
});

test("vectors: standalone frames encode and decode byte for byte", () => {
  for (const f of v.frames) {
    const want = expected(f);
    const pt = fromHex(f.plaintext);
    if (want === "beyond-2^53") {
      // Offsets above 2^53 need 8 PiB of traffic; the JS client rejects them as garbage.
      assert.throws(() => decodeFrame(pt), ProtocolError, f.name);
      continue;
    }
    assert.equal(toHex(encodeFrame(want)), f.plaintext, f.name);
    assert.deepEqual(decodeFrame(pt), want, f.name);
  }
});

test("vectors: refuse messages", () => {
  for (const r of v.refuse) {
    assert.equal(toHex(encodeRefuse({ code: r.code, reason: r.reason })), r.message);
    assert.deepEqual(decodeRefuse(fromHex(r.message)), { code: r.code, reason: r.reason });
  }
});

/**
 * checkTranscript seals and opens each frame in order. In frame mode 1 only
 * the client's first frame (CONFIRM) is sealed; every other message on the
 * wire is the frame itself, and no other nonce is used.
 */
async function checkTranscript(name: string, ini: HandshakeResult, res: HandshakeResult, hs: VHandshake, mode: Mode): Promise<void> {
  const plain = mode.frameMode === FRAME_MODE_PLAIN;
  for (const [dir, list, sealer, opener] of [
    ["c2s", hs.client_to_server, ini.send, res.recv],
    ["s2c", hs.server_to_client, res.send, ini.recv],
  ] as const) {
    for (const [i, f] of list.entries()) {
      const pt = fromHex(f.plaintext);
      const want = expected(f);
      if (want !== "beyond-2^53") {
        assert.equal(toHex(encodeFrame(want)), f.plaintext, `${name} ${dir} ${f.name} encode`);
        assert.deepEqual(decodeFrame(pt), want, `${name} ${dir} ${f.name} decode`);
      }
      const confirm = dir === "c2s" && i === 0;
      if (confirm) assert.equal(f.type, "CONFIRM", `${name} the client's first frame`);
      if (plain && !confirm) {
        assert.equal(f.ciphertext, f.plaintext, `${name} ${dir} ${f.name}: plain frame on the wire`);
        continue;
      }
      assert.equal(toHex(await sealer.encrypt(EMPTY, pt)), f.ciphertext, `${name} ${dir} ${f.name} seal`);
      assert.equal(toHex(await opener.decrypt(EMPTY, fromHex(f.ciphertext!))), f.plaintext, `${name} ${dir} ${f.name} open`);
    }
  }
}

async function checkHandshake(name: string, suite: SuiteId, pattern: PatternId, hs: VHandshake, mode: Mode, psk?: Uint8Array): Promise<Uint8Array> {
  const resume = psk !== undefined;
  assert.equal(hs.protocol_name, protocolName(suite, pattern, resume), name);
  const header = encodeHelloHeader({ version: 1, suite, pattern, sessionId: resume ? fromHex(hs.session_id) : undefined, plainInTLS: mode.plainInTLS });
  const prologue = concat(utf8(PROLOGUE_PREFIX), header);
  assert.equal(toHex(prologue), hs.prologue, `${name} prologue`);
  const payload = encodeHelloPayload(resume ? { window: hs.client_window, counter: hs.resume_counter! } : { window: hs.client_window });
  assert.equal(toHex(payload), hs.client_hello_payload, `${name} hello payload`);
  const staticKey = keyPair(fromHex(v.server_static_private));
  const ini = new Handshake({
    initiator: true, suite, pattern, prologue, psk,
    remoteStatic: pattern === 2 ? base64urlDecode(v.server_static_public_b64url) : undefined,
    ephemeral: fromHex(hs.client_ephemeral_private),
  });
  const hello = concat(header, await ini.writeMessage1(payload));
  assert.equal(toHex(hello), hs.client_hello, `${name} client hello`);

  // Server side on the same bytes.
  const d = decodeHelloHeader(fromHex(hs.client_hello));
  assert.equal(d.headerLen, header.length);
  assert.equal(d.header.plainInTLS ?? false, mode.plainInTLS, `${name} PLAIN_IN_TLS flag`);
  const res = new Handshake({ initiator: false, suite, pattern, prologue, psk, staticKey: pattern === 2 ? staticKey : undefined, ephemeral: fromHex(hs.server_ephemeral_private) });
  const p1 = await res.readMessage1(d.noise);
  assert.deepEqual(decodeHelloPayload(p1, resume), resume ? { window: hs.client_window, counter: hs.resume_counter } : { window: hs.client_window });
  const sp: ServerPayload = { sessionId: fromHex(hs.session_id), delivered: hs.server_delivered, window: hs.server_window, ttl: hs.ttl_seconds };
  if (mode.plainInTLS) sp.frameMode = mode.frameMode;
  assert.equal(toHex(encodeServerPayload(sp)), hs.server_hello_payload, `${name} server payload`);
  assert.equal(fromHex(hs.server_hello_payload).length, mode.plainInTLS ? 33 : 32, `${name} server payload length`);
  const { msg, result: rr } = await res.writeMessage2(encodeServerPayload(sp));
  assert.equal(toHex(concat(Uint8Array.of(2), msg)), hs.server_hello, `${name} server hello`);

  const sh = fromHex(hs.server_hello);
  const { payload: p2, result: ir } = await ini.readMessage2(sh.subarray(1));
  assert.deepEqual(decodeServerPayload(p2, mode.plainInTLS), sp, `${name} server payload decode`);
  assert.throws(() => decodeServerPayload(p2, !mode.plainInTLS), ProtocolError, `${name} server payload against the other flag`);
  assert.equal(toHex(ir.hash), hs.handshake_hash, `${name} handshake hash`);
  assert.equal(toHex(rr.hash), hs.handshake_hash);
  await checkTranscript(name, ir, rr, hs, mode);
  return ir.hash;
}

/** modeOf reads a session's plain-in-TLS keys: frame_mode exactly when plain_in_tls, and then 0 or 1. */
function modeOf(s: VSession): Mode {
  const plainInTLS = s.plain_in_tls === true;
  assert.equal(s.frame_mode !== undefined, plainInTLS, `${s.name}: frame_mode goes with plain_in_tls`);
  if (plainInTLS) assert.ok(s.frame_mode === 0 || s.frame_mode === 1, `${s.name}: frame_mode ${s.frame_mode}`);
  return plainInTLS ? { plainInTLS, frameMode: s.frame_mode } : { plainInTLS };
}

for (const s of v.sessions) {
  test(`vectors: session ${s.name}: first handshake, resume secret, resume handshake, transcripts`, async () => {
    const suite = s.suite as SuiteId;
    const pattern = s.pattern as PatternId;
    const mode = modeOf(s);
    const h = await checkHandshake(`${s.name}/first`, suite, pattern, s.first, mode);
    const secret = deriveResumeSecret(h);
    assert.equal(toHex(secret), s.resume_secret, `${s.name} resume secret`);
    await checkHandshake(`${s.name}/resume`, suite, pattern, s.resume, mode, secret);
  });
}

test("vectors: plain-in-TLS sessions cover frame mode 1 and a declined offer (0)", () => {
  const modes = v.sessions.filter((s) => s.plain_in_tls).map((s) => s.frame_mode).sort();
  assert.deepEqual(modes, [0, 1]);
});
