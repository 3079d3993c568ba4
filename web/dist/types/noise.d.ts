import { type Aead } from "./aead.js";
import { type PatternId, type SuiteId } from "./constants.js";
/** protocolName returns the full Noise protocol name of a handshake. */
export declare function protocolName(suite: SuiteId, pattern: PatternId, resume: boolean): string;
/** dh computes X25519 and rejects the all-zero output of low-order points. */
export declare function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array;
/** KeyPair is an X25519 key pair. */
export interface KeyPair {
    priv: Uint8Array;
    pub: Uint8Array;
}
/** keyPair derives the key pair of priv, or generates one. */
export declare function keyPair(priv?: Uint8Array): KeyPair;
/** CipherState is a Noise cipher state: a key and the implicit nonce counter. */
export declare class CipherState {
    private readonly aead;
    private n;
    constructor(aead: Aead | null);
    hasKey(): boolean;
    /** nonce is the next nonce; it is assigned synchronously so callers may pipeline. */
    get nonce(): number;
    encrypt(ad: Uint8Array, pt: Uint8Array): Promise<Uint8Array>;
    decrypt(ad: Uint8Array, ct: Uint8Array): Promise<Uint8Array>;
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
export declare class Handshake {
    private ck;
    private h;
    private cs;
    private e?;
    private re?;
    private readonly p;
    constructor(p: HandshakeParams);
    /** hash returns the current handshake hash h. */
    get hash(): Uint8Array;
    private mixHash;
    private mixKey;
    private mixKeyAndHash;
    private encryptAndHash;
    private decryptAndHash;
    private mixE;
    /** writeMessage1 returns Noise message 1 (initiator). */
    writeMessage1(payload: Uint8Array): Promise<Uint8Array>;
    /** readMessage1 processes Noise message 1 (responder) and returns its payload. */
    readMessage1(msg: Uint8Array): Promise<Uint8Array>;
    /** writeMessage2 returns Noise message 2 (responder) and completes the handshake. */
    writeMessage2(payload: Uint8Array): Promise<{
        msg: Uint8Array;
        result: HandshakeResult;
    }>;
    /** readMessage2 processes Noise message 2 (initiator), returns its payload and completes the handshake. */
    readMessage2(msg: Uint8Array): Promise<{
        payload: Uint8Array;
        result: HandshakeResult;
    }>;
    private split;
}
/** deriveResumeSecret computes the psk of every resume of a session (§3). */
export declare function deriveResumeSecret(h: Uint8Array): Uint8Array;
