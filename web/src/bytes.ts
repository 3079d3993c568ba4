// Byte helpers. Offsets and counters are JavaScript numbers: a session would
// have to move 8 PiB before they lose precision, so u64 fields are read and
// written as numbers and values above 2^53 - 1 are rejected as garbage.

export const textEncoder = new TextEncoder();
const fatalDecoder = new TextDecoder("utf-8", { fatal: true });

/** utf8 encodes a string. */
export function utf8(s: string): Uint8Array {
  return textEncoder.encode(s);
}

/** decodeUtf8 decodes strict UTF-8 and throws on invalid input. */
export function decodeUtf8(b: Uint8Array): string {
  return fatalDecoder.decode(b);
}

/** concat joins byte arrays into a new one. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** putU64 writes a non-negative safe integer big-endian at b[o:o+8]. */
export function putU64(b: Uint8Array, o: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`dualgate: u64 value ${v} out of range`);
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(o, hi);
  dv.setUint32(o + 4, lo);
}

/** getU64 reads a big-endian u64 and throws when it is above 2^53 - 1. */
export function getU64(b: Uint8Array, o: number): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hi = dv.getUint32(o);
  const lo = dv.getUint32(o + 4);
  if (hi > 0x1fffff) throw new RangeError("dualgate: u64 field beyond 2^53");
  return hi * 0x100000000 + lo;
}

export function putU32(b: Uint8Array, o: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(o, v);
}

export function getU32(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o);
}

export function putU16(b: Uint8Array, o: number, v: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(o, v);
}

export function getU16(b: Uint8Array, o: number): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(o);
}

/** equalBytes compares in time independent of where the inputs differ. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** base64urlEncode encodes without padding (RFC 4648 §5). */
export function base64urlEncode(b: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  if (i < b.length) {
    const n = (b[i]! << 16) | ((i + 1 < b.length ? b[i + 1]! : 0) << 8);
    s += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
    if (i + 1 < b.length) s += B64URL[(n >> 6) & 63]!;
  }
  return s;
}

/** base64urlDecode decodes unpadded base64url and throws on anything else. */
export function base64urlDecode(s: string): Uint8Array {
  if (s.length % 4 === 1) throw new Error("dualgate: bad base64url length");
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (const ch of s) {
    const v = B64URL.indexOf(ch);
    if (v < 0) throw new Error(`dualgate: bad base64url character ${JSON.stringify(ch)}`);
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new Error("dualgate: non-canonical base64url");
  return out;
}

export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || /[^0-9a-fA-F]/.test(s)) throw new Error("dualgate: bad hex");
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
