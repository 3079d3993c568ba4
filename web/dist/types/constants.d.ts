/** WebSocket subprotocol of the protocol. */
export declare const SUBPROTOCOL = "dualgate.v1";
/** Protocol version spoken by this client. */
export declare const PROTOCOL_VERSION = 1;
export declare const MAX_MESSAGE_LEN = 65535;
export declare const TAG_LEN = 16;
export declare const DH_LEN = 32;
export declare const SESSION_ID_LEN = 16;
export declare const HELLO_HEADER_LEN = 5;
export declare const HELLO_NEW_PAYLOAD = 4;
export declare const HELLO_RESUME_PAYLOAD = 12;
export declare const SERVER_HELLO_PAYLOAD = 32;
/** SERVER_HELLO_PAYLOAD_MODE is the server payload length when the hello had PLAIN_IN_TLS: 32 + u8 frame mode (§4.2). */
export declare const SERVER_HELLO_PAYLOAD_MODE: number;
export declare const SERVER_HELLO_LEN: number;
export declare const DATA_HEADER_LEN = 18;
export declare const MAX_DATA_PAYLOAD: number;
export declare const CTRL_FRAME_LEN = 9;
export declare const CLOSE_HEADER_LEN = 11;
export declare const MAX_REASON_LEN = 123;
export declare const MSG_CLIENT_HELLO = 1;
export declare const MSG_SERVER_HELLO = 2;
export declare const MSG_REFUSE = 3;
export declare const FRAME_CONFIRM = 16;
export declare const FRAME_DATA = 17;
export declare const FRAME_ACK = 18;
export declare const FRAME_PING = 19;
export declare const FRAME_PONG = 20;
export declare const FRAME_CLOSE = 21;
export declare const FLAG_RESUME = 1;
/** FLAG_PLAIN_IN_TLS asks the server for plain-in-TLS frames (client hello flags bit 1, NN only, §5.7). */
export declare const FLAG_PLAIN_IN_TLS = 2;
export declare const FLAG_FIN = 1;
export declare const FLAG_TEXT = 2;
/** Frame modes of a transport, the 33rd server hello payload byte (§4.2, §5.7). */
export declare const FRAME_MODE_SEALED = 0;
export declare const FRAME_MODE_PLAIN = 1;
/** Smallest and largest receive window (bytes). */
export declare const MIN_WINDOW: number;
export declare const MAX_WINDOW: number;
export declare const PROLOGUE_PREFIX = "dualgate/1";
export declare const RESUME_INFO = "dualgate/1 resume";
/** Noise cipher suite ids (docs/protocol.md §3). */
export declare const SUITE_CHACHAPOLY = 1;
export declare const SUITE_AESGCM = 2;
export type SuiteId = typeof SUITE_CHACHAPOLY | typeof SUITE_AESGCM;
/** Noise pattern ids (docs/protocol.md §3). */
export declare const PATTERN_NN = 1;
export declare const PATTERN_NK = 2;
export type PatternId = typeof PATTERN_NN | typeof PATTERN_NK;
/** Close and refusal codes (docs/protocol.md §7). */
export declare const CloseCode: {
    readonly Normal: 1000;
    readonly GoingAway: 1001;
    readonly ProtocolError: 1002;
    readonly UnsupportedData: 1003;
    readonly Policy: 1008;
    readonly TooBig: 1009;
    readonly InternalError: 1011;
    readonly UnknownSession: 4000;
    readonly SessionExpired: 4001;
    readonly ProofFailed: 4002;
    readonly TooFarBehind: 4003;
    readonly UnsupportedVersion: 4004;
    readonly UnsupportedSuite: 4005;
    readonly TooManySessions: 4006;
    readonly TooManySessionsFromAddress: 4007;
    readonly ServerKeyMismatch: 4008;
    readonly ReplayedResume: 4009;
    readonly UpstreamUnreachable: 4010;
    readonly UpstreamClosed: 4011;
    readonly NotDualgateClient: 4012;
    readonly HandshakeTimeout: 4013;
    readonly TransportSuperseded: 4014;
    readonly TransportDead: 4015;
};
/**
 * isFinalRefusal reports whether a refusal code ends the session (docs/protocol.md §4.3);
 * any other code is transient and the client retries with backoff.
 */
export declare function isFinalRefusal(code: number): boolean;
