// Specification constants of the Dualgate resumable stream protocol, version 1
// (docs/protocol.md). Names follow the Go package resume/.

/** WebSocket subprotocol of the protocol. */
export const SUBPROTOCOL = "dualgate.v1";
/** Protocol version spoken by this client. */
export const PROTOCOL_VERSION = 1;

export const MAX_MESSAGE_LEN = 65535;
export const TAG_LEN = 16;
export const DH_LEN = 32;
export const SESSION_ID_LEN = 16;
export const HELLO_HEADER_LEN = 5;
export const HELLO_NEW_PAYLOAD = 4;
export const HELLO_RESUME_PAYLOAD = 12;
export const SERVER_HELLO_PAYLOAD = 32;
/** SERVER_HELLO_PAYLOAD_MODE is the server payload length when the hello had PLAIN_IN_TLS: 32 + u8 frame mode (§4.2). */
export const SERVER_HELLO_PAYLOAD_MODE = SERVER_HELLO_PAYLOAD + 1;
export const SERVER_HELLO_LEN = 1 + DH_LEN + SERVER_HELLO_PAYLOAD + TAG_LEN;
export const DATA_HEADER_LEN = 18;
export const MAX_DATA_PAYLOAD = MAX_MESSAGE_LEN - TAG_LEN - DATA_HEADER_LEN;
export const CTRL_FRAME_LEN = 9;
export const CLOSE_HEADER_LEN = 11;
export const MAX_REASON_LEN = 123;

export const MSG_CLIENT_HELLO = 0x01;
export const MSG_SERVER_HELLO = 0x02;
export const MSG_REFUSE = 0x03;

export const FRAME_CONFIRM = 0x10;
export const FRAME_DATA = 0x11;
export const FRAME_ACK = 0x12;
export const FRAME_PING = 0x13;
export const FRAME_PONG = 0x14;
export const FRAME_CLOSE = 0x15;

export const FLAG_RESUME = 0x01;
/** FLAG_PLAIN_IN_TLS asks the server for plain-in-TLS frames (client hello flags bit 1, NN only, §5.7). */
export const FLAG_PLAIN_IN_TLS = 0x02;
export const FLAG_FIN = 0x01;
export const FLAG_TEXT = 0x02;

/** Frame modes of a transport, the 33rd server hello payload byte (§4.2, §5.7). */
export const FRAME_MODE_SEALED = 0;
export const FRAME_MODE_PLAIN = 1;

/** Smallest and largest receive window (bytes). */
export const MIN_WINDOW = 16 << 10;
export const MAX_WINDOW = 16 << 20;

export const PROLOGUE_PREFIX = "dualgate/1";
export const RESUME_INFO = "dualgate/1 resume";

/** Noise cipher suite ids (docs/protocol.md §3). */
export const SUITE_CHACHAPOLY = 1;
export const SUITE_AESGCM = 2;
export type SuiteId = typeof SUITE_CHACHAPOLY | typeof SUITE_AESGCM;

/** Noise pattern ids (docs/protocol.md §3). */
export const PATTERN_NN = 1;
export const PATTERN_NK = 2;
export type PatternId = typeof PATTERN_NN | typeof PATTERN_NK;

/** Close and refusal codes (docs/protocol.md §7). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  Policy: 1008,
  TooBig: 1009,
  InternalError: 1011,
  UnknownSession: 4000,
  SessionExpired: 4001,
  ProofFailed: 4002,
  TooFarBehind: 4003,
  UnsupportedVersion: 4004,
  UnsupportedSuite: 4005,
  TooManySessions: 4006,
  TooManySessionsFromAddress: 4007,
  ServerKeyMismatch: 4008,
  ReplayedResume: 4009,
  UpstreamUnreachable: 4010,
  UpstreamClosed: 4011,
  NotDualgateClient: 4012,
  HandshakeTimeout: 4013,
  TransportSuperseded: 4014,
  TransportDead: 4015,
} as const;

const FINAL_CODES = new Set<number>([1002, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4008, 4009]);

/**
 * isFinalRefusal reports whether a refusal code ends the session (docs/protocol.md §4.3);
 * any other code is transient and the client retries with backoff.
 */
export function isFinalRefusal(code: number): boolean {
  return FINAL_CODES.has(code);
}
