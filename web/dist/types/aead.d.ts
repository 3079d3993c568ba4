import { type SuiteId } from "./constants.js";
/** Aead seals and opens with a fixed 32-byte key and the Noise 64-bit nonce. */
export interface Aead {
    seal(n: number, ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
    open(n: number, ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
}
/** AeadError means a message did not authenticate. */
export declare class AeadError extends Error {
    constructor();
}
/** webCrypto returns crypto.subtle when this context has it (secure contexts only in browsers). */
export declare function webCrypto(): SubtleCrypto | undefined;
/** newAead returns the AEAD of a suite with key k. AES-GCM needs WebCrypto. */
export declare function newAead(suite: SuiteId, k: Uint8Array): Aead;
/** randomBytes returns n bytes from crypto.getRandomValues (available on http:// pages too). */
export declare function randomBytes(n: number): Uint8Array;
