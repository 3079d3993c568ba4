export declare const textEncoder: TextEncoder;
/** utf8 encodes a string. */
export declare function utf8(s: string): Uint8Array;
/** decodeUtf8 decodes strict UTF-8 and throws on invalid input. */
export declare function decodeUtf8(b: Uint8Array): string;
/** concat joins byte arrays into a new one. */
export declare function concat(...parts: Uint8Array[]): Uint8Array;
/** putU64 writes a non-negative safe integer big-endian at b[o:o+8]. */
export declare function putU64(b: Uint8Array, o: number, v: number): void;
/** getU64 reads a big-endian u64 and throws when it is above 2^53 - 1. */
export declare function getU64(b: Uint8Array, o: number): number;
export declare function putU32(b: Uint8Array, o: number, v: number): void;
export declare function getU32(b: Uint8Array, o: number): number;
export declare function putU16(b: Uint8Array, o: number, v: number): void;
export declare function getU16(b: Uint8Array, o: number): number;
/** equalBytes compares in time independent of where the inputs differ. */
export declare function equalBytes(a: Uint8Array, b: Uint8Array): boolean;
/** base64urlEncode encodes without padding (RFC 4648 §5). */
export declare function base64urlEncode(b: Uint8Array): string;
/** base64urlDecode decodes unpadded base64url and throws on anything else. */
export declare function base64urlDecode(s: string): Uint8Array;
export declare function toHex(b: Uint8Array): string;
export declare function fromHex(s: string): Uint8Array;
