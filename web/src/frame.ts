// Codecs of the protocol messages (docs/protocol.md §4 and §5): small pure
// functions over byte arrays that reject every length mismatch and every
// reserved bit, so garbage never passes as a message.

import { decodeUtf8, getU16, getU32, getU64, putU16, putU32, putU64, utf8 } from "./bytes.js";
import {
  CLOSE_HEADER_LEN, CTRL_FRAME_LEN, DATA_HEADER_LEN, DH_LEN, FLAG_FIN, FLAG_PLAIN_IN_TLS, FLAG_RESUME,
  FLAG_TEXT, FRAME_ACK, FRAME_CLOSE, FRAME_CONFIRM, FRAME_DATA, FRAME_MODE_PLAIN, FRAME_PING, FRAME_PONG,
  HELLO_HEADER_LEN, HELLO_NEW_PAYLOAD, HELLO_RESUME_PAYLOAD, MAX_DATA_PAYLOAD, MAX_REASON_LEN, MAX_WINDOW,
  MIN_WINDOW, MSG_CLIENT_HELLO, MSG_REFUSE, PATTERN_NK, SERVER_HELLO_PAYLOAD, SERVER_HELLO_PAYLOAD_MODE,
  SESSION_ID_LEN,
} from "./constants.js";

/** ProtocolError is a violation of the protocol; code is the close code (1002 unless said). */
export class ProtocolError extends Error {
  readonly code: number;
  constructor(message: string, code = 1002) {
    super(`dualgate: ${message}`);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** Frame is one decoded transport frame. */
export type Frame =
  | { type: typeof FRAME_CONFIRM; offset: number }
  | { type: typeof FRAME_DATA; flags: number; offset: number; ack: number; payload: Uint8Array }
  | { type: typeof FRAME_ACK; offset: number }
  | { type: typeof FRAME_PING; value: bigint }
  | { type: typeof FRAME_PONG; value: bigint }
  | { type: typeof FRAME_CLOSE; offset: number; code: number; reason: string };

/** encodeFrame returns the plaintext encoding of f. */
export function encodeFrame(f: Frame): Uint8Array {
  switch (f.type) {
    case FRAME_DATA: {
      const b = new Uint8Array(DATA_HEADER_LEN + f.payload.length);
      b[0] = FRAME_DATA;
      b[1] = f.flags;
      putU64(b, 2, f.offset);
      putU64(b, 10, f.ack);
      b.set(f.payload, DATA_HEADER_LEN);
      return b;
    }
    case FRAME_CLOSE: {
      const r = utf8(truncReason(f.reason));
      const b = new Uint8Array(CLOSE_HEADER_LEN + r.length);
      b[0] = FRAME_CLOSE;
      putU64(b, 1, f.offset);
      putU16(b, 9, f.code);
      b.set(r, CLOSE_HEADER_LEN);
      return b;
    }
    default: {
      const b = new Uint8Array(CTRL_FRAME_LEN);
      b[0] = f.type;
      if ("value" in f) new DataView(b.buffer).setBigUint64(1, f.value);
      else putU64(b, 1, f.offset);
      return b;
    }
  }
}

/** decodeFrame parses one plaintext frame; payload and reason alias or copy b. */
export function decodeFrame(b: Uint8Array): Frame {
  if (b.length === 0) throw new ProtocolError("empty frame");
  const type = b[0]!;
  switch (type) {
    case FRAME_CONFIRM:
    case FRAME_ACK:
    case FRAME_PING:
    case FRAME_PONG: {
      if (b.length !== CTRL_FRAME_LEN) throw new ProtocolError(`frame 0x${type.toString(16)} of ${b.length} bytes`);
      // PING/PONG values are opaque 64-bit numbers; offsets are JS numbers.
      if (type === FRAME_PING || type === FRAME_PONG) return { type, value: new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(1) };
      return { type, offset: u64(b, 1) };
    }
    case FRAME_DATA: {
      if (b.length < DATA_HEADER_LEN + 1) throw new ProtocolError(`DATA of ${b.length} bytes`);
      if (b.length - DATA_HEADER_LEN > MAX_DATA_PAYLOAD) throw new ProtocolError("DATA payload too long");
      const flags = b[1]!;
      if ((flags & ~(FLAG_FIN | FLAG_TEXT)) !== 0) throw new ProtocolError(`DATA flags 0x${flags.toString(16)}: reserved bits set`);
      const offset = u64(b, 2);
      const payload = b.subarray(DATA_HEADER_LEN);
      if (!Number.isSafeInteger(offset + payload.length)) throw new ProtocolError("DATA offset overflows");
      return { type, flags, offset, ack: u64(b, 10), payload };
    }
    case FRAME_CLOSE: {
      if (b.length < CLOSE_HEADER_LEN) throw new ProtocolError(`CLOSE of ${b.length} bytes`);
      if (b.length - CLOSE_HEADER_LEN > MAX_REASON_LEN) throw new ProtocolError("CLOSE reason too long");
      let reason: string;
      try {
        reason = decodeUtf8(b.subarray(CLOSE_HEADER_LEN));
      } catch {
        throw new ProtocolError("CLOSE reason is not UTF-8");
      }
      return { type, offset: u64(b, 1), code: getU16(b, 9), reason };
    }
    default:
      throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
  }
}

function u64(b: Uint8Array, o: number): number {
  try {
    return getU64(b, o);
  } catch {
    throw new ProtocolError("u64 field beyond 2^53");
  }
}

/** truncReason cuts a reason to 123 UTF-8 bytes on a code point boundary. */
export function truncReason(s: string): string {
  let b = utf8(s);
  if (b.length <= MAX_REASON_LEN) return s;
  let n = MAX_REASON_LEN;
  while (n > 0 && (b[n]! & 0xc0) === 0x80) n--;
  b = b.subarray(0, n);
  return decodeUtf8(b);
}

/** HelloHeader is the authenticated header of a client hello (§4.1). */
export interface HelloHeader {
  version: number;
  suite: number;
  pattern: number;
  /** sessionId is set on a resume hello. */
  sessionId?: Uint8Array;
  /** plainInTLS is the PLAIN_IN_TLS flag (§5.7): the client offers plain frames inside verified TLS. NN only. */
  plainInTLS?: boolean;
}

/** encodeHelloHeader returns the 5- or 21-byte header of a client hello. */
export function encodeHelloHeader(h: HelloHeader): Uint8Array {
  const resume = h.sessionId !== undefined;
  const b = new Uint8Array(HELLO_HEADER_LEN + (resume ? SESSION_ID_LEN : 0));
  b[0] = MSG_CLIENT_HELLO;
  b[1] = h.version;
  b[2] = h.suite;
  b[3] = h.pattern;
  if (h.plainInTLS && h.pattern === PATTERN_NK) throw new RangeError("dualgate: PLAIN_IN_TLS is for NN only");
  b[4] = (resume ? FLAG_RESUME : 0) | (h.plainInTLS ? FLAG_PLAIN_IN_TLS : 0);
  if (resume) {
    if (h.sessionId!.length !== SESSION_ID_LEN) throw new RangeError("dualgate: session ID must be 16 bytes");
    b.set(h.sessionId!, HELLO_HEADER_LEN);
  }
  return b;
}

/** decodeHelloHeader parses a client hello header and returns it with the Noise message. */
export function decodeHelloHeader(b: Uint8Array): { header: HelloHeader; headerLen: number; noise: Uint8Array } {
  if (b.length < HELLO_HEADER_LEN) throw new ProtocolError(`client hello of ${b.length} bytes`);
  if (b[0] !== MSG_CLIENT_HELLO) throw new ProtocolError(`message type 0x${b[0]!.toString(16)}, want client hello`);
  const flags = b[4]!;
  if ((flags & ~(FLAG_RESUME | FLAG_PLAIN_IN_TLS)) !== 0) throw new ProtocolError("client hello reserved flag bits set");
  const header: HelloHeader = { version: b[1]!, suite: b[2]!, pattern: b[3]! };
  if (flags & FLAG_PLAIN_IN_TLS) {
    if (header.pattern === PATTERN_NK) throw new ProtocolError("PLAIN_IN_TLS with pattern NK");
    header.plainInTLS = true;
  }
  let o = HELLO_HEADER_LEN;
  if (flags & FLAG_RESUME) {
    if (b.length < o + SESSION_ID_LEN) throw new ProtocolError("client hello session ID truncated");
    header.sessionId = b.slice(o, o + SESSION_ID_LEN);
    o += SESSION_ID_LEN;
  }
  if (b.length < o + DH_LEN) throw new ProtocolError("client hello Noise message truncated");
  return { header, headerLen: o, noise: b.subarray(o) };
}

/** HelloPayload is the Noise payload of a client hello. */
export interface HelloPayload {
  window: number;
  /** counter is the resume counter (resume hellos only). */
  counter?: number;
}

export function encodeHelloPayload(p: HelloPayload): Uint8Array {
  const b = new Uint8Array(p.counter === undefined ? HELLO_NEW_PAYLOAD : HELLO_RESUME_PAYLOAD);
  putU32(b, 0, p.window);
  if (p.counter !== undefined) putU64(b, 4, p.counter);
  return b;
}

export function decodeHelloPayload(b: Uint8Array, resume: boolean): HelloPayload {
  const want = resume ? HELLO_RESUME_PAYLOAD : HELLO_NEW_PAYLOAD;
  if (b.length !== want) throw new ProtocolError(`client hello payload of ${b.length} bytes, want ${want}`);
  const p: HelloPayload = { window: getU32(b, 0) };
  if (resume) p.counter = u64(b, 4);
  checkWindow(p.window, "client");
  return p;
}

/** ServerPayload is the Noise payload of the server hello (§4.2). */
export interface ServerPayload {
  sessionId: Uint8Array;
  delivered: number;
  window: number;
  /** ttl is the detached session TTL in seconds. */
  ttl: number;
  /** frameMode is the 33rd byte, present exactly when the client hello had PLAIN_IN_TLS: 0 sealed, 1 plain-in-TLS (§5.7). */
  frameMode?: number;
}

/** encodeServerPayload returns the 32-byte payload, or 33 bytes when p.frameMode is set. */
export function encodeServerPayload(p: ServerPayload): Uint8Array {
  const b = new Uint8Array(p.frameMode === undefined ? SERVER_HELLO_PAYLOAD : SERVER_HELLO_PAYLOAD_MODE);
  b.set(p.sessionId, 0);
  putU64(b, 16, p.delivered);
  putU32(b, 24, p.window);
  putU32(b, 28, p.ttl);
  if (p.frameMode !== undefined) b[SERVER_HELLO_PAYLOAD] = p.frameMode;
  return b;
}

/**
 * decodeServerPayload parses the server hello payload of a hello sent with
 * (plainInTLS) or without the PLAIN_IN_TLS flag: 33 bytes ending in a frame
 * mode of 0 or 1, or 32 bytes, and nothing else.
 */
export function decodeServerPayload(b: Uint8Array, plainInTLS = false): ServerPayload {
  const want = plainInTLS ? SERVER_HELLO_PAYLOAD_MODE : SERVER_HELLO_PAYLOAD;
  if (b.length !== want) throw new ProtocolError(`server hello payload of ${b.length} bytes, want ${want}`);
  const p: ServerPayload = { sessionId: b.slice(0, 16), delivered: u64(b, 16), window: getU32(b, 24), ttl: getU32(b, 28) };
  checkWindow(p.window, "server");
  if (plainInTLS) {
    const mode = b[SERVER_HELLO_PAYLOAD]!;
    if (mode > FRAME_MODE_PLAIN) throw new ProtocolError(`server hello frame mode ${mode}`);
    p.frameMode = mode;
  }
  return p;
}

function checkWindow(w: number, who: string): void {
  if (w < MIN_WINDOW || w > MAX_WINDOW) throw new ProtocolError(`${who} window ${w} out of range`);
}

/** Refusal is a decoded refuse message (§4.3). */
export interface Refusal {
  code: number;
  reason: string;
}

export function encodeRefuse(r: Refusal): Uint8Array {
  const reason = utf8(truncReason(r.reason));
  const b = new Uint8Array(4 + reason.length);
  b[0] = MSG_REFUSE;
  putU16(b, 1, r.code);
  b[3] = reason.length;
  b.set(reason, 4);
  return b;
}

export function decodeRefuse(b: Uint8Array): Refusal {
  if (b.length < 4 || b[0] !== MSG_REFUSE) throw new ProtocolError("malformed refuse message");
  const n = b[3]!;
  if (n > MAX_REASON_LEN || b.length !== 4 + n) throw new ProtocolError("refuse message length mismatch");
  let reason: string;
  try {
    reason = decodeUtf8(b.subarray(4));
  } catch {
    throw new ProtocolError("refuse reason is not UTF-8");
  }
  return { code: getU16(b, 1), reason };
}
