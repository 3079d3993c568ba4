// Noise handshakes of the protocol (docs/protocol.md §3): NN, NK, NNpsk0 and
// NKpsk0 over X25519, SHA-256 and one of the two AEADs, both roles (the
// responder is used by the tests and by nothing in the bundle's public API).
// Every handshake is two messages:
//
//	-> [psk] e [es]          (es only for NK)
//	<- e, ee
//
// With psk0 every e token also calls MixKey(e.public) (Noise §9.2).

import { x25519 } from "@noble/curves/ed25519.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Aead, AeadError, newAead, randomBytes } from "./aead.js";
import { concat, utf8 } from "./bytes.js";
import { DH_LEN, PATTERN_NK, SUITE_AESGCM, TAG_LEN, type PatternId, type SuiteId } from "./constants.js";
import { ProtocolError } from "./frame.js";

const EMPTY = new Uint8Array(0);

/** protocolName returns the full Noise protocol name of a handshake. */
export function protocolName(suite: SuiteId, pattern: PatternId, resume: boolean): string {
  const p = pattern === PATTERN_NK ? "NK" : "NN";
  const c = suite === SUITE_AESGCM ? "AESGCM" : "ChaChaPoly";
  return `Noise_${p}${resume ? "psk0" : ""}_25519_${c}_SHA256`;
}

/** hkdf is the Noise HKDF with the chaining key as HMAC key; it returns n (2 or 3) outputs. */
function hkdf(ck: Uint8Array, ikm: Uint8Array, n: 2 | 3): Uint8Array[] {
  const temp = hmac(sha256, ck, ikm);
  const o1 = hmac(sha256, temp, Uint8Array.of(1));
  const o2 = hmac(sha256, temp, concat(o1, Uint8Array.of(2)));
  if (n === 2) return [o1, o2];
  return [o1, o2, hmac(sha256, temp, concat(o2, Uint8Array.of(3)))];
}

/** dh computes X25519 and rejects the all-zero output of low-order points. */
export function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  let out: Uint8Array;
  try {
    out = x25519.getSharedSecret(priv, pub);
  } catch {
    throw new ProtocolError("X25519 with a low-order point", 1002);
  }
  let acc = 0;
  for (const b of out) acc |= b;
  if (acc === 0) throw new ProtocolError("X25519 with a low-order point", 1002);
  return out;
}

/** KeyPair is an X25519 key pair. */
export interface KeyPair {
  priv: Uint8Array;
  pub: Uint8Array;
}

/** keyPair derives the key pair of priv, or generates one. */
export function keyPair(priv?: Uint8Array): KeyPair {
  const p = priv ?? randomBytes(32);
  return { priv: p, pub: x25519.getPublicKey(p) };
}

/** CipherState is a Noise cipher state: a key and the implicit nonce counter. */
export class CipherState {
  private n = 0;
  constructor(private readonly aead: Aead | null) {}

  hasKey(): boolean {
    return this.aead !== null;
  }

  /** nonce is the next nonce; it is assigned synchronously so callers may pipeline. */
  get nonce(): number {
    return this.n;
  }

  encrypt(ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array> {
    if (!this.aead) return Promise.resolve(pt);
    return this.aead.seal(this.n++, ad, pt);
  }

  decrypt(ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
    if (!this.aead) return Promise.resolve(ct);
    return this.aead.open(this.n++, ad, ct);
  }
}

/** HandshakeParams configures one side of one handshake. */
export interface HandshakeParams {
  initiator: boolean;
  suite: SuiteId;
  pattern: PatternId;
  prologue: Uint8Array;
  /** psk is the resume secret; set for psk0 (resume) handshakes. */
  psk?: Uint8Array;
  /** staticKey is the responder's static key pair (NK). */
  staticKey?: KeyPair;
  /** remoteStatic is the initiator's pinned server key (NK). */
  remoteStatic?: Uint8Array;
  /** ephemeral fixes the ephemeral private key (test vectors only). */
  ephemeral?: Uint8Array;
}

/** HandshakeResult holds the transport cipher states and the final handshake hash. */
export interface HandshakeResult {
  send: CipherState;
  recv: CipherState;
  hash: Uint8Array;
}

/**
 * Handshake runs the two messages of one handshake. Call writeMessage1 /
 * readMessage2 as initiator, readMessage1 / writeMessage2 as responder.
 * A Handshake is used once.
 */
export class Handshake {
  private ck: Uint8Array;
  private h: Uint8Array;
  private cs = new CipherState(null);
  private e?: KeyPair;
  private re?: Uint8Array;
  private readonly p: HandshakeParams;

  constructor(p: HandshakeParams) {
    this.p = p;
    if (p.pattern === PATTERN_NK && !(p.initiator ? p.remoteStatic?.length === DH_LEN : p.staticKey)) {
      throw new Error("dualgate: NK needs the server's static key");
    }
    if (p.psk !== undefined && p.psk.length !== 32) throw new Error("dualgate: psk must be 32 bytes");
    const name = utf8(protocolName(p.suite, p.pattern, p.psk !== undefined));
    if (name.length <= 32) {
      this.h = new Uint8Array(32);
      this.h.set(name);
    } else {
      this.h = sha256(name);
    }
    this.ck = this.h;
    this.mixHash(p.prologue);
    if (p.pattern === PATTERN_NK) this.mixHash(p.initiator ? p.remoteStatic! : p.staticKey!.pub);
  }

  /** hash returns the current handshake hash h. */
  get hash(): Uint8Array {
    return this.h;
  }

  private mixHash(data: Uint8Array): void {
    this.h = sha256(concat(this.h, data));
  }

  private mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm, 2);
    this.ck = ck!;
    this.cs = new CipherState(newAead(this.p.suite, k!));
  }

  private mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, th, k] = hkdf(this.ck, ikm, 3);
    this.ck = ck!;
    this.mixHash(th!);
    this.cs = new CipherState(newAead(this.p.suite, k!));
  }

  private async encryptAndHash(pt: Uint8Array): Promise<Uint8Array> {
    const ct = await this.cs.encrypt(this.h, pt);
    this.mixHash(ct);
    return ct;
  }

  private async decryptAndHash(ct: Uint8Array): Promise<Uint8Array> {
    const pt = await this.cs.decrypt(this.h, ct);
    this.mixHash(ct);
    return pt;
  }

  private mixE(pub: Uint8Array): void {
    this.mixHash(pub);
    if (this.p.psk) this.mixKey(pub);
  }

  /** writeMessage1 returns Noise message 1 (initiator). */
  async writeMessage1(payload: Uint8Array): Promise<Uint8Array> {
    if (this.p.psk) this.mixKeyAndHash(this.p.psk);
    this.e = keyPair(this.p.ephemeral);
    this.mixE(this.e.pub);
    if (this.p.pattern === PATTERN_NK) this.mixKey(dh(this.e.priv, this.p.remoteStatic!));
    return concat(this.e.pub, await this.encryptAndHash(payload));
  }

  /** readMessage1 processes Noise message 1 (responder) and returns its payload. */
  async readMessage1(msg: Uint8Array): Promise<Uint8Array> {
    if (msg.length < DH_LEN) throw new ProtocolError("Noise message 1 truncated");
    if (this.p.psk) this.mixKeyAndHash(this.p.psk);
    this.re = msg.slice(0, DH_LEN);
    this.mixE(this.re);
    if (this.p.pattern === PATTERN_NK) this.mixKey(dh(this.p.staticKey!.priv, this.re));
    const body = msg.subarray(DH_LEN);
    if (this.cs.hasKey() && body.length < TAG_LEN) throw new AeadError();
    return this.decryptAndHash(body);
  }

  /** writeMessage2 returns Noise message 2 (responder) and completes the handshake. */
  async writeMessage2(payload: Uint8Array): Promise<{ msg: Uint8Array; result: HandshakeResult }> {
    this.e = keyPair(this.p.ephemeral);
    this.mixE(this.e.pub);
    this.mixKey(dh(this.e.priv, this.re!));
    const msg = concat(this.e.pub, await this.encryptAndHash(payload));
    const [c1, c2] = this.split();
    return { msg, result: { send: c2, recv: c1, hash: this.h } };
  }

  /** readMessage2 processes Noise message 2 (initiator), returns its payload and completes the handshake. */
  async readMessage2(msg: Uint8Array): Promise<{ payload: Uint8Array; result: HandshakeResult }> {
    if (msg.length < DH_LEN + TAG_LEN) throw new AeadError();
    this.re = msg.slice(0, DH_LEN);
    this.mixE(this.re);
    this.mixKey(dh(this.e!.priv, this.re));
    const payload = await this.decryptAndHash(msg.subarray(DH_LEN));
    const [c1, c2] = this.split();
    return { payload, result: { send: c1, recv: c2, hash: this.h } };
  }

  private split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.ck, EMPTY, 2);
    return [new CipherState(newAead(this.p.suite, k1!)), new CipherState(newAead(this.p.suite, k2!))];
  }
}

/** deriveResumeSecret computes the psk of every resume of a session (§3). */
export function deriveResumeSecret(h: Uint8Array): Uint8Array {
  // HKDF-SHA256 (RFC 5869) with an empty salt, i.e. 32 zero bytes.
  const prk = hmac(sha256, new Uint8Array(32), h);
  return hmac(sha256, prk, concat(utf8("dualgate/1 resume"), Uint8Array.of(1)));
}
