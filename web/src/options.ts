// Options of a DualgateSocket and their normalisation (defaults, ranges).

import { webCrypto } from "./aead.js";
import { normaliseBackoff, type BackoffOptions } from "./backoff.js";
import { base64urlDecode } from "./bytes.js";
import { MAX_DATA_PAYLOAD, MAX_WINDOW, MIN_WINDOW, SUITE_AESGCM, SUITE_CHACHAPOLY, type SuiteId } from "./constants.js";

/** UrlProvider returns the URL of the next transport, e.g. with a fresh token. */
export type UrlProvider = () => string | URL | Promise<string | URL>;

/** CipherPreference selects the AEAD; "auto" is AES-GCM where WebCrypto exists. */
export type CipherPreference = "auto" | "aes-gcm" | "chacha20-poly1305";

/** WebSocketLike is the constructor shape the client needs (the browser's WebSocket). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

/** ConnectOptions configures a DualgateSocket. Every field is optional. */
export interface ConnectOptions {
  /** serverKey pins the gateway's static X25519 public key (unpadded base64url, 43 chars): Noise NK. Without it the handshake is NN (anonymous). */
  serverKey?: string;
  /** cipher selects the AEAD (default "auto"). */
  cipher?: CipherPreference;
  /**
   * alwaysSeal keeps every frame under the session's AEAD (default false).
   * By default a transport over `wss:` without serverKey offers plain-in-TLS
   * frames (docs/protocol.md §5.7): the browser has verified the gateway's
   * certificate, so when the gateway terminates TLS 1.3 itself, frames after
   * CONFIRM rely on TLS alone and every byte is encrypted once instead of
   * twice. Set alwaysSeal when data must stay sealed even from a
   * TLS-inspecting proxy the browser trusts (pinning serverKey does that too).
   * DualgateSocket.plainInTLS tells which mode the current transport uses.
   */
  alwaysSeal?: boolean;
  /** backoff shapes the delays between failed attempts. */
  backoff?: BackoffOptions;
  /** heartbeatInterval is the PING interval in ms (default 10,000). */
  heartbeatInterval?: number;
  /** deadPeerTimeout drops a transport on which nothing arrived for this long, in ms (default 30,000). */
  deadPeerTimeout?: number;
  /** handshakeTimeout bounds one transport's connect and handshake, in ms (default 10,000). */
  handshakeTimeout?: number;
  /** probeTimeout drops the transport when a probe PING sent on online/visibilitychange/pageshow gets no answer within it, in ms (default 4,000). */
  probeTimeout?: number;
  /** giveUpAfter ends the session (4001) when no transport worked for this long, in ms (default: the server's detached TTL); before the first open it ends the attempt with 1006 (default: never). */
  giveUpAfter?: number;
  /** closeTimeout ends a close() that got no answer, in ms (default 10,000). */
  closeTimeout?: number;
  /** receiveWindow is announced to the server, in bytes (default 256 KiB, 16 KiB – 16 MiB). */
  receiveWindow?: number;
  /** maxMessageSize bounds one incoming message (default 16 MiB); larger ones end the session with 1009. */
  maxMessageSize?: number;
  /** chunkSize is the largest DATA payload sent, in bytes (default and most 65,501; never above a quarter of the server's window). */
  chunkSize?: number;
  /** highWaterMark is the bufferedAmount above which send() returns false (default 1 MiB). */
  highWaterMark?: number;
  /** lifecycle listens to online, visibilitychange and pageshow to reconnect promptly (default true). */
  lifecycle?: boolean;
  /** WebSocket replaces globalThis.WebSocket (for non-browser runtimes). It must verify `wss:` certificates, as browsers do; if it does not, set alwaysSeal. */
  WebSocket?: WebSocketConstructor;
}

/** SocketStats are the counters of a session. */
export interface SocketStats {
  /** bytesSent counts application bytes queued by send(). */
  bytesSent: number;
  /** bytesReceived counts application bytes delivered to message events. */
  bytesReceived: number;
  /** replayedBytes counts bytes transmitted again after resumes. */
  replayedBytes: number;
  /** duplicateBytes counts received bytes dropped because they had already been delivered. */
  duplicateBytes: number;
  /** transports counts transports that completed a handshake. */
  transports: number;
  /** resumes counts successful resumes. */
  resumes: number;
  /** rtt is the last PING round-trip time in ms (NaN before the first PONG). */
  rtt: number;
  /** suite is the Noise cipher suite name in use. */
  suite: string;
  /** pattern is the Noise pattern of the first handshake ("NN" or "NK"). */
  pattern: string;
}

/** Opts are the normalised options. */
export interface Opts {
  pinned?: Uint8Array;
  suite: SuiteId;
  alwaysSeal: boolean;
  backoff: Required<BackoffOptions>;
  heartbeatInterval: number;
  deadPeerTimeout: number;
  handshakeTimeout: number;
  probeTimeout: number;
  giveUpAfter?: number;
  closeTimeout: number;
  window: number;
  maxMessageSize: number;
  chunkSize: number;
  highWaterMark: number;
  lifecycle: boolean;
  WS: WebSocketConstructor;
}

/** normalise applies defaults and checks ranges; it throws TypeError/RangeError on bad options. */
export function normalise(o: ConnectOptions = {}): Opts {
  let pinned: Uint8Array | undefined;
  if (o.serverKey !== undefined) {
    pinned = base64urlDecode(o.serverKey.trim());
    if (pinned.length !== 32) throw new TypeError("dualgate: serverKey must be a 32-byte X25519 key in base64url");
  }
  const pref = o.cipher ?? "auto";
  let suite: SuiteId;
  if (pref === "chacha20-poly1305") suite = SUITE_CHACHAPOLY;
  else if (pref === "aes-gcm") {
    if (!webCrypto()) throw new TypeError("dualgate: cipher aes-gcm needs crypto.subtle (a secure context)");
    suite = SUITE_AESGCM;
  } else suite = webCrypto() ? SUITE_AESGCM : SUITE_CHACHAPOLY;
  const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new TypeError("dualgate: no WebSocket implementation");
  const hb = num(o.heartbeatInterval, 10_000, 100);
  const window = num(o.receiveWindow, 256 << 10, MIN_WINDOW);
  if (window > MAX_WINDOW) throw new RangeError("dualgate: receiveWindow above 16 MiB");
  return {
    pinned,
    suite,
    alwaysSeal: Boolean(o.alwaysSeal),
    backoff: normaliseBackoff(o.backoff),
    heartbeatInterval: hb,
    deadPeerTimeout: Math.max(num(o.deadPeerTimeout, 30_000, 200), hb + 100),
    handshakeTimeout: num(o.handshakeTimeout, 10_000, 100),
    probeTimeout: num(o.probeTimeout, 4_000, 100),
    giveUpAfter: o.giveUpAfter,
    closeTimeout: num(o.closeTimeout, 10_000, 100),
    window,
    maxMessageSize: num(o.maxMessageSize, 16 << 20, 1),
    chunkSize: Math.min(num(o.chunkSize, 64 << 10, 1), MAX_DATA_PAYLOAD),
    highWaterMark: num(o.highWaterMark, 1 << 20, 0),
    lifecycle: o.lifecycle ?? true,
    WS,
  };
}

function num(v: number | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  if (!Number.isFinite(v) || v < min) throw new RangeError(`dualgate: option value ${v} below ${min}`);
  return v;
}
