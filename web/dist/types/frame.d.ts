import { FRAME_ACK, FRAME_CLOSE, FRAME_CONFIRM, FRAME_DATA, FRAME_PING, FRAME_PONG } from "./constants.js";
/** ProtocolError is a violation of the protocol; code is the close code (1002 unless said). */
export declare class ProtocolError extends Error {
    readonly code: number;
    constructor(message: string, code?: number);
}
/** Frame is one decoded transport frame. */
export type Frame = {
    type: typeof FRAME_CONFIRM;
    offset: number;
} | {
    type: typeof FRAME_DATA;
    flags: number;
    offset: number;
    ack: number;
    payload: Uint8Array;
} | {
    type: typeof FRAME_ACK;
    offset: number;
} | {
    type: typeof FRAME_PING;
    value: bigint;
} | {
    type: typeof FRAME_PONG;
    value: bigint;
} | {
    type: typeof FRAME_CLOSE;
    offset: number;
    code: number;
    reason: string;
};
/** encodeFrame returns the plaintext encoding of f. */
export declare function encodeFrame(f: Frame): Uint8Array;
/** decodeFrame parses one plaintext frame; payload and reason alias or copy b. */
export declare function decodeFrame(b: Uint8Array): Frame;
/** truncReason cuts a reason to 123 UTF-8 bytes on a code point boundary. */
export declare function truncReason(s: string): string;
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
export declare function encodeHelloHeader(h: HelloHeader): Uint8Array;
/** decodeHelloHeader parses a client hello header and returns it with the Noise message. */
export declare function decodeHelloHeader(b: Uint8Array): {
    header: HelloHeader;
    headerLen: number;
    noise: Uint8Array;
};
/** HelloPayload is the Noise payload of a client hello. */
export interface HelloPayload {
    window: number;
    /** counter is the resume counter (resume hellos only). */
    counter?: number;
}
export declare function encodeHelloPayload(p: HelloPayload): Uint8Array;
export declare function decodeHelloPayload(b: Uint8Array, resume: boolean): HelloPayload;
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
export declare function encodeServerPayload(p: ServerPayload): Uint8Array;
/**
 * decodeServerPayload parses the server hello payload of a hello sent with
 * (plainInTLS) or without the PLAIN_IN_TLS flag: 33 bytes ending in a frame
 * mode of 0 or 1, or 32 bytes, and nothing else.
 */
export declare function decodeServerPayload(b: Uint8Array, plainInTLS?: boolean): ServerPayload;
/** Refusal is a decoded refuse message (§4.3). */
export interface Refusal {
    code: number;
    reason: string;
}
export declare function encodeRefuse(r: Refusal): Uint8Array;
export declare function decodeRefuse(b: Uint8Array): Refusal;
