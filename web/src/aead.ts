// The two AEADs of the protocol (docs/protocol.md §3): ChaCha20-Poly1305 in
// pure JavaScript (@noble/ciphers), usable everywhere including http:// pages
// where crypto.subtle does not exist, and AES-256-GCM through WebCrypto.

import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { SUITE_AESGCM, SUITE_CHACHAPOLY, type SuiteId } from "./constants.js";

/** Aead seals and opens with a fixed 32-byte key and the Noise 64-bit nonce. */
export interface Aead {
  seal(n: number, ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
  open(n: number, ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
}

/** AeadError means a message did not authenticate. */
export class AeadError extends Error {
  constructor() {
    super("dualgate: message does not authenticate");
    this.name = "AeadError";
  }
}

function nonce(n: number, littleEndian: boolean): Uint8Array {
  const b = new Uint8Array(12);
  const dv = new DataView(b.buffer);
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  if (littleEndian) {
    dv.setUint32(4, lo, true);
    dv.setUint32(8, hi, true);
  } else {
    dv.setUint32(4, hi);
    dv.setUint32(8, lo);
  }
  return b;
}

class ChaChaAead implements Aead {
  constructor(private readonly key: Uint8Array) {}
  seal(n: number, ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.sealSync(n, ad, pt));
  }
  sealSync(n: number, ad: Uint8Array, pt: Uint8Array): Uint8Array {
    return chacha20poly1305(this.key, nonce(n, true), ad).encrypt(pt);
  }
  open(n: number, ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(chacha20poly1305(this.key, nonce(n, true), ad).decrypt(ct));
    } catch {
      return Promise.reject(new AeadError());
    }
  }
}

class WebCryptoAesGcm implements Aead {
  private key: Promise<CryptoKey>;
  constructor(private readonly subtle: SubtleCrypto, raw: Uint8Array) {
    this.key = subtle.importKey("raw", raw as BufferSource, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  }
  async seal(n: number, ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array> {
    const ct = await this.subtle.encrypt(
      { name: "AES-GCM", iv: nonce(n, false) as BufferSource, additionalData: ad as BufferSource, tagLength: 128 },
      await this.key,
      pt as BufferSource,
    );
    return new Uint8Array(ct);
  }
  async open(n: number, ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
    try {
      const pt = await this.subtle.decrypt(
        { name: "AES-GCM", iv: nonce(n, false) as BufferSource, additionalData: ad as BufferSource, tagLength: 128 },
        await this.key,
        ct as BufferSource,
      );
      return new Uint8Array(pt);
    } catch {
      throw new AeadError();
    }
  }
}

/** webCrypto returns crypto.subtle when this context has it (secure contexts only in browsers). */
export function webCrypto(): SubtleCrypto | undefined {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c && c.subtle && typeof c.subtle.encrypt === "function" ? c.subtle : undefined;
}

/** newAead returns the AEAD of a suite with key k. AES-GCM needs WebCrypto. */
export function newAead(suite: SuiteId, k: Uint8Array): Aead {
  if (suite === SUITE_CHACHAPOLY) return new ChaChaAead(k.slice());
  if (suite === SUITE_AESGCM) {
    const subtle = webCrypto();
    if (!subtle) throw new Error("dualgate: AES-GCM needs WebCrypto (crypto.subtle), which this page lacks");
    return new WebCryptoAesGcm(subtle, k.slice());
  }
  throw new Error(`dualgate: unknown suite ${String(suite)}`);
}

/** randomBytes returns n bytes from crypto.getRandomValues (available on http:// pages too). */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}
