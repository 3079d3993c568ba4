// DualgateSocket: the browser client of the resumable stream. One socket is
// one session kept in this tab's memory; it runs over any number of
// WebSocket transports and resumes after each loss.
//
//	connecting ──handshake──► open ──transport lost──► reconnecting
//	     │                     ▲  │                         │
//	     │                     │  └──── resumed ◄───────────┘
//	     └── final refusal / close() / TTL passed ──► closed (from any state)

import { AeadError } from "./aead.js";
import { backoffDelay } from "./backoff.js";
import { concat, equalBytes, utf8 } from "./bytes.js";
import {
  CloseCode, FRAME_CONFIRM, FRAME_MODE_PLAIN, FRAME_PING, FRAME_PONG, MSG_REFUSE, MSG_SERVER_HELLO, PATTERN_NK,
  PATTERN_NN, PROLOGUE_PREFIX, PROTOCOL_VERSION, SUBPROTOCOL, SUITE_AESGCM, isFinalRefusal, type PatternId,
} from "./constants.js";
import {
  type ConnectionState, DualgateCloseEvent, DualgateMessageEvent, type DualgateSocketEventMap,
  ResumedEvent, RttEvent, StateChangeEvent, TransportEvent,
} from "./events.js";
import {
  type Frame, ProtocolError, decodeFrame, decodeRefuse, decodeServerPayload, encodeFrame,
  encodeHelloHeader, encodeHelloPayload,
} from "./frame.js";
import { type CipherState, Handshake, deriveResumeSecret } from "./noise.js";
import { type ConnectOptions, type Opts, type SocketStats, type UrlProvider, normalise } from "./options.js";
import { Stream } from "./stream.js";

const EMPTY = new Uint8Array(0);
/** ABNORMAL is the close code of a session that never opened within giveUpAfter (as WebSocket's 1006). */
const ABNORMAL = 1006;

/** Transport is one WebSocket and the keys of its handshake. */
interface Transport {
  ws: WebSocket;
  send?: CipherState;
  recv?: CipherState;
  hs?: Handshake;
  resume: boolean;
  /** offerPlain is the PLAIN_IN_TLS flag of this transport's client hello. */
  offerPlain: boolean;
  /** plain is frame mode 1 (set with the keys): frames after CONFIRM go without the AEAD, in both directions. */
  plain: boolean;
  ready: boolean;
  dead: boolean;
  gotHello: boolean;
  settle: (ok: boolean) => void;
  started: number;
  tx: Promise<void>;
  rx: Promise<void>;
  lastRx: number;
  lastTx: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** SessionEndError is thrown by drain() and opened when the session ended. */
export class SessionEndError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string) {
    super(`dualgate: session closed with ${code}${reason ? ` (${reason})` : ""}`);
    this.name = "SessionEndError";
    this.code = code;
    this.reason = reason;
  }
}

/**
 * offersPlainInTLS reports whether a transport to url sets PLAIN_IN_TLS in its
 * hello (docs/protocol.md §5.7): the carrier is TLS whose certificate the
 * browser verifies (`wss:`, or `https:`, which browsers open as `wss:`; a
 * relative URL counts as the page's scheme), the pattern is NN, and the
 * application did not ask to seal always. It is decided per transport, since
 * a URL provider may hand out another URL for each.
 */
export function offersPlainInTLS(url: string, o: Pick<Opts, "pinned" | "alwaysSeal">): boolean {
  if (o.pinned || o.alwaysSeal) return false;
  let u: URL;
  try {
    u = new URL(url, (globalThis as { location?: { href: string } }).location?.href);
  } catch {
    return false;
  }
  return u.protocol === "wss:" || u.protocol === "https:";
}

const now = (): number => (typeof performance !== "undefined" ? performance.now() : Date.now());

/**
 * DualgateSocket is a resumable encrypted message stream to a Dualgate
 * gateway, in the spirit of WebSocket. Create it with connect(). Its zero
 * value is not usable. JavaScript is single-threaded; all methods may be
 * called at any time from the page's event loop.
 */
export class DualgateSocket extends EventTarget {
  private readonly o: Opts;
  private readonly urlProvider: UrlProvider;
  private readonly stream: Stream;
  private st: ConnectionState = "connecting";
  private t?: Transport;
  private sid?: Uint8Array;
  private resumeSecret?: Uint8Array;
  private resumeCounter = 0;
  /** serverHeard is set once an authenticated frame arrived: the server holds the session. */
  private serverHeard = false;
  private retryNow = false;
  private readonly created = now();
  private ttlMs = 0;
  private failures = 0;
  private lostAt = 0;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private retryResolve?: () => void;
  private hbTimer?: ReturnType<typeof setInterval>;
  private ackTimer?: ReturnType<typeof setTimeout>;
  private closeTimer?: ReturnType<typeof setTimeout>;
  private pingSeq = 1n;
  private pings = new Map<bigint, number>();
  private lastPing = 0;
  private probeAt = 0;
  private endInfo?: { code: number; reason: string; wasClean: boolean };
  private drainWaiters: { threshold: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly counters = { bytesSent: 0, bytesReceived: 0, replayedBytes: 0, transports: 0, resumes: 0, rtt: NaN };
  private readonly unlisten: (() => void)[] = [];
  private openedResolve!: () => void;
  private openedReject!: (e: Error) => void;
  /** opened resolves on the first open event and rejects if the session ends before it. */
  readonly opened: Promise<void>;

  constructor(url: string | URL | UrlProvider, options?: ConnectOptions) {
    super();
    this.o = normalise(options);
    this.urlProvider = typeof url === "function" ? url : () => url;
    this.stream = new Stream({ window: this.o.window, maxMessageSize: this.o.maxMessageSize, chunkSize: this.o.chunkSize });
    this.opened = new Promise<void>((res, rej) => {
      this.openedResolve = res;
      this.openedReject = rej;
    });
    this.opened.catch(() => {});
    if (this.o.lifecycle) this.listenLifecycle();
    queueMicrotask(() => void this.attempt());
  }

  /** state is the connection state. */
  get state(): ConnectionState {
    return this.st;
  }

  /** bufferedAmount is the number of sent bytes the gateway has not acknowledged yet. */
  get bufferedAmount(): number {
    return this.stream.bufferedAmount;
  }

  /**
   * plainInTLS is true while the current transport uses plain-in-TLS frames
   * (docs/protocol.md §5.7): the gateway accepted the offer of a `wss:`
   * transport without serverKey or alwaysSeal, and every frame after CONFIRM
   * is protected by TLS alone. It is false without an open transport.
   */
  get plainInTLS(): boolean {
    return this.t?.ready === true && this.t.plain;
  }

  /** sessionId is the hex session ID once the first handshake completed. */
  get sessionId(): string | undefined {
    return this.sid && Array.from(this.sid, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** stats returns a snapshot of the session's counters. */
  get stats(): SocketStats {
    return {
      ...this.counters,
      duplicateBytes: this.stream.duplicateBytes,
      suite: this.o.suite === SUITE_AESGCM ? "25519_AESGCM_SHA256" : "25519_ChaChaPoly_SHA256",
      pattern: this.o.pinned ? "NK" : "NN",
    };
  }

  /**
   * send queues one message: a string is a text message, bytes a binary one.
   * It never blocks; it returns false when bufferedAmount is above the
   * highWaterMark, as a hint to await drain().
   */
  send(data: string | ArrayBuffer | ArrayBufferView): boolean {
    if (this.endInfo || this.stream.closing) throw new DOMException("dualgate: socket is closing or closed", "InvalidStateError");
    let bytes: Uint8Array;
    const text = typeof data === "string";
    if (typeof data === "string") bytes = utf8(data);
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else throw new TypeError("dualgate: send takes a string, an ArrayBuffer or a typed array");
    this.stream.queueMessage(bytes, text);
    this.counters.bytesSent += bytes.length;
    this.pump();
    return this.stream.bufferedAmount <= this.o.highWaterMark;
  }

  /**
   * drain resolves once bufferedAmount is at most threshold (default 0, i.e.
   * everything acknowledged). It rejects with SessionEndError if the session
   * ends first.
   */
  drain(threshold = 0): Promise<void> {
    if (this.stream.bufferedAmount <= threshold) return Promise.resolve();
    if (this.endInfo) return Promise.reject(new SessionEndError(this.endInfo.code, this.endInfo.reason));
    return new Promise((resolve, reject) => this.drainWaiters.push({ threshold, resolve, reject }));
  }

  /**
   * close ends the session after everything sent so far has been delivered:
   * code is 1000 or 3000–4999, reason at most 123 UTF-8 bytes. A close
   * survives transport losses; after closeTimeout it ends without answer.
   */
  close(code: number = CloseCode.Normal, reason = ""): void {
    if (code !== 1000 && (code < 3000 || code > 4999)) throw new DOMException(`dualgate: close code ${code}`, "InvalidAccessError");
    if (this.endInfo || this.stream.closing) return;
    if (!this.sid) {
      this.end(code, reason, true);
      return;
    }
    this.stream.close(code, reason);
    this.closeTimer = setTimeout(() => this.end(CloseCode.GoingAway, "close not answered", false), this.o.closeTimeout);
    this.pump();
  }

  /**
   * dropTransport kills the current transport at once, as a network failure
   * would; the session resumes on a new one. For demos and tests.
   */
  dropTransport(): void {
    if (this.t) this.lose(this.t, 0, "dropped by the application");
  }

  /** ping sends a PING and resolves with the round-trip time in ms; it rejects after deadPeerTimeout without answer. */
  ping(): Promise<number> {
    return new Promise((resolve, reject) => {
      if (!this.t?.ready) {
        reject(new Error("dualgate: no open transport"));
        return;
      }
      const onRtt = (e: Event) => {
        clearTimeout(timer);
        resolve((e as RttEvent).rtt);
      };
      const timer = setTimeout(() => {
        this.removeEventListener("rtt", onRtt);
        reject(new Error("dualgate: no PONG"));
      }, this.o.deadPeerTimeout);
      this.addEventListener("rtt", onRtt, { once: true });
      this.sendPing();
    });
  }

  /** messages returns a ReadableStream of the messages that arrive from now on; it ends when the session ends. */
  messages(): ReadableStream<string | Uint8Array> {
    let onMsg: (e: Event) => void;
    let onClose: () => void;
    return new ReadableStream<string | Uint8Array>({
      start: (ctl) => {
        if (this.endInfo) {
          ctl.close();
          return;
        }
        onMsg = (e) => ctl.enqueue((e as DualgateMessageEvent).data);
        onClose = () => {
          this.removeEventListener("message", onMsg);
          ctl.close();
        };
        this.addEventListener("message", onMsg);
        this.addEventListener("close", onClose, { once: true });
      },
      cancel: () => {
        this.removeEventListener("message", onMsg);
        this.removeEventListener("close", onClose);
      },
    });
  }

  /** Symbol.asyncIterator iterates the messages that arrive from now on until the session ends. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string | Uint8Array, void, undefined> {
    const reader = this.messages().getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      // Stop listening, so that a loop left early does not buffer messages forever.
      await reader.cancel();
    }
  }

  // Typed listener overloads.
  override addEventListener<K extends keyof DualgateSocketEventMap>(type: K, listener: (ev: DualgateSocketEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null | ((ev: never) => void), options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  override removeEventListener<K extends keyof DualgateSocketEventMap>(type: K, listener: (ev: DualgateSocketEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null | ((ev: never) => void), options?: boolean | EventListenerOptions): void {
    super.removeEventListener(type, listener as EventListenerOrEventListenerObject | null, options);
  }

  // ---- state ----

  private setState(s: ConnectionState): void {
    if (s === this.st) return;
    const prev = this.st;
    this.st = s;
    this.dispatchEvent(new StateChangeEvent(s, prev));
  }

  private end(code: number, reason: string, wasClean: boolean): void {
    if (this.endInfo) return;
    this.endInfo = { code, reason, wasClean };
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    clearTimeout(this.closeTimer);
    clearInterval(this.hbTimer);
    this.retryResolve?.();
    for (const u of this.unlisten.splice(0)) u();
    const t = this.t;
    this.t = undefined;
    if (t) {
      // Let frames already sealed (our CLOSE) leave before the carrier closes.
      t.ws.onmessage = null;
      t.settle(false);
      const wsCode = wasClean ? 1000 : code >= 3000 && code <= 4999 ? code : 1000;
      void t.tx.finally(() => this.closeWs(t, wsCode, reason));
    }
    const err = new SessionEndError(code, reason);
    for (const w of this.drainWaiters.splice(0)) w.reject(err);
    this.openedReject(err);
    this.setState("closed");
    this.dispatchEvent(new DualgateCloseEvent(code, reason, wasClean));
  }

  private closeWs(t: Transport, code: number, reason: string): void {
    t.dead = true;
    clearTimeout(t.timer);
    t.ws.onclose = null;
    try {
      t.ws.close(code, reason.slice(0, 60));
    } catch {
      try {
        t.ws.close();
      } catch {
        /* already closed */
      }
    }
  }

  private listenLifecycle(): void {
    const g = globalThis as unknown as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener; document?: Document };
    if (typeof g.addEventListener !== "function") return;
    const nudge = () => this.nudge();
    const vis = () => {
      if (g.document?.visibilityState === "visible") this.nudge();
    };
    g.addEventListener("online", nudge);
    g.addEventListener("pageshow", nudge);
    g.document?.addEventListener("visibilitychange", vis);
    this.unlisten.push(() => {
      g.removeEventListener!("online", nudge);
      g.removeEventListener!("pageshow", nudge);
      g.document?.removeEventListener("visibilitychange", vis);
    });
  }

  /** nudge reacts to a network or page lifecycle event: retry now, or probe the open transport. */
  private nudge(): void {
    if (this.endInfo) return;
    if (this.retryResolve) {
      this.failures = 0;
      clearTimeout(this.retryTimer);
      const r = this.retryResolve;
      this.retryResolve = undefined;
      r();
      return;
    }
    const t = this.t;
    if (t && !t.ready && now() - t.started > 1000) {
      // An attempt begun on the old network may hang until its timeout: start over now.
      this.retryNow = true;
      this.lose(t, 0, "network changed during the handshake");
      return;
    }
    if (t?.ready && !this.probeAt) {
      this.probeAt = now();
      this.sendPing();
    }
  }

  // ---- transports ----

  private async attempt(): Promise<void> {
    while (!this.endInfo) {
      const delay = this.retryNow ? 0 : backoffDelay(this.failures, this.o.backoff);
      this.retryNow = false;
      if (delay > 0) {
        await new Promise<void>((resolve) => {
          this.retryResolve = resolve;
          this.retryTimer = setTimeout(resolve, delay);
        });
        this.retryResolve = undefined;
        if (this.endInfo) return;
      }
      if (this.sid) {
        const limit = this.o.giveUpAfter ?? this.ttlMs;
        if (now() - this.lostAt > limit) {
          this.end(CloseCode.SessionExpired, "session expired: no transport within the detached TTL", false);
          return;
        }
      } else if (this.o.giveUpAfter !== undefined && now() - this.created > this.o.giveUpAfter) {
        this.end(ABNORMAL, "could not connect", false);
        return;
      }
      let url: string;
      try {
        url = String(await this.urlProvider());
      } catch (e) {
        this.failures++;
        continue;
      }
      if (this.endInfo) return;
      const ok = await this.runTransport(url);
      if (ok) return; // the transport is up; its loss calls attempt again
      this.failures++;
    }
  }

  /** runTransport opens one transport; it resolves true once the handshake completed. */
  private runTransport(url: string): Promise<boolean> {
    return new Promise<boolean>((done) => {
      let ws: WebSocket;
      try {
        ws = new this.o.WS(url, SUBPROTOCOL);
      } catch (e) {
        // A malformed URL, a blocked port or mixed content: retrying cannot help.
        this.end(CloseCode.Policy, `cannot open ${url}: ${(e as Error).message}`, false);
        done(false);
        return;
      }
      ws.binaryType = "arraybuffer";
      let settled = false;
      const settle = (ok: boolean) => {
        if (!settled) {
          settled = true;
          done(ok);
        }
      };
      const t: Transport = {
        ws, resume: !!this.sid, offerPlain: offersPlainInTLS(url, this.o), plain: false,
        ready: false, dead: false, gotHello: false, settle, started: now(),
        tx: Promise.resolve(), rx: Promise.resolve(), lastRx: now(), lastTx: now(),
      };
      this.t = t;
      t.timer = setTimeout(() => {
        this.lose(t, CloseCode.HandshakeTimeout, "handshake timeout");
        settle(false);
      }, this.o.handshakeTimeout);
      ws.onopen = () => {
        this.sendHello(t).catch((e) => {
          this.lose(t, 0, `hello: ${String(e)}`);
          settle(false);
        });
      };
      ws.onmessage = (ev: MessageEvent) => {
        if (t.dead) return;
        if (!(ev.data instanceof ArrayBuffer)) {
          this.lose(t, CloseCode.UnsupportedData, "text message from the server");
          settle(false);
          return;
        }
        const msg = new Uint8Array(ev.data);
        t.lastRx = now();
        this.probeAt = 0;
        if (!t.gotHello) {
          t.gotHello = true;
          t.rx = t.rx.then(() => this.onHello(t, msg)).then((ok) => settle(ok), (e) => {
            this.lose(t, 0, String(e));
            settle(false);
          });
          return;
        }
        // Decrypt eagerly (nonces are taken in arrival order) and handle in order.
        const start = () => this.unwrap(t, msg);
        const eager = t.recv ? start() : undefined;
        eager?.catch(() => {});
        t.rx = t.rx.then(() => eager ?? start()).then(
          (pt) => {
            if (t.dead || this.endInfo) return;
            this.serverHeard = true;
            this.onFrame(t, decodeFrame(pt));
          },
          (e) => this.onTransportError(t, e),
        ).catch((e) => this.onTransportError(t, e));
      };
      ws.onclose = (ev: CloseEvent) => {
        this.lose(t, ev.code, ev.reason);
        settle(false);
      };
      ws.onerror = () => {
        /* onclose follows */
      };
    });
  }

  private onTransportError(t: Transport, e: unknown): void {
    if (t.dead) return;
    if (e instanceof ProtocolError) {
      this.failSession(e.code, e.message);
      return;
    }
    // A message that does not decrypt ends the transport; the session resumes.
    this.lose(t, 0, e instanceof AeadError ? "transport message does not authenticate" : String(e));
  }

  /** failSession ends the session after a protocol violation by the authenticated peer. */
  private failSession(code: number, reason: string): void {
    const t = this.t;
    if (t?.ready && t.send) {
      const pt = encodeFrame({ type: 0x15, offset: this.stream.highestSent, code, reason: reason.slice(0, 100) });
      void this.wrap(t, pt, !t.plain).then((ct) => {
        try {
          t.ws.send(ct as Uint8Array<ArrayBuffer>);
        } catch {
          /* closing anyway */
        }
      });
    }
    this.end(code, reason, false);
  }

  private async sendHello(t: Transport): Promise<void> {
    const resume = t.resume;
    const pattern: PatternId = this.o.pinned ? PATTERN_NK : PATTERN_NN;
    const header = encodeHelloHeader({
      version: PROTOCOL_VERSION, suite: this.o.suite, pattern, sessionId: resume ? this.sid : undefined, plainInTLS: t.offerPlain,
    });
    const payload = encodeHelloPayload(resume ? { window: this.o.window, counter: ++this.resumeCounter } : { window: this.o.window });
    t.hs = new Handshake({
      initiator: true,
      suite: this.o.suite,
      pattern,
      prologue: concat(utf8(PROLOGUE_PREFIX), header),
      psk: resume ? this.resumeSecret : undefined,
      remoteStatic: this.o.pinned,
    });
    const m1 = await t.hs.writeMessage1(payload);
    if (t.dead) return;
    t.ws.send(concat(header, m1) as Uint8Array<ArrayBuffer>);
  }

  /** onHello handles the server's answer to the client hello. */
  private async onHello(t: Transport, msg: Uint8Array): Promise<boolean> {
    if (t.dead || this.endInfo) return false;
    if (msg.length > 0 && msg[0] === MSG_REFUSE) {
      const r = decodeRefuse(msg);
      const lc = this.stream.localCloseInfo;
      if (r.code === CloseCode.UnknownSession && t.resume && lc && this.stream.closeWasSent) {
        // The server completed the close exchange and forgot the session;
        // only its answer was lost with the transport (docs/protocol.md §5.6).
        this.end(lc.code, lc.reason, true);
        return false;
      }
      if (r.code === CloseCode.UnknownSession && t.resume && !this.serverHeard) {
        // The server has forgotten a session it never sent us anything on (a
        // server keeps even unconfirmed sessions, §4.4, so this means a restart
        // or a server that creates sessions at CONFIRM): it delivered nothing,
        // so start the session anew and send everything again.
        this.sid = undefined;
        this.resumeSecret = undefined;
        this.resumeCounter = 0;
        this.lose(t, r.code, r.reason);
        return false;
      }
      if (isFinalRefusal(r.code)) this.end(r.code, r.reason, false);
      else this.lose(t, r.code, r.reason);
      return false;
    }
    if (msg.length === 0 || msg[0] !== MSG_SERVER_HELLO || !t.hs) {
      this.end(CloseCode.ProtocolError, "unexpected message instead of a server hello", false);
      return false;
    }
    let res;
    try {
      res = await t.hs.readMessage2(msg.subarray(1));
    } catch (e) {
      if (e instanceof AeadError) {
        if (this.o.pinned && !t.resume) this.end(CloseCode.ServerKeyMismatch, "server hello does not authenticate against the pinned key", false);
        else this.end(CloseCode.ProofFailed, "server hello does not authenticate", false);
        return false;
      }
      throw e;
    }
    if (t.dead || this.endInfo) return false;
    let p;
    try {
      p = decodeServerPayload(res.payload, t.offerPlain);
    } catch (e) {
      this.end(CloseCode.ProtocolError, String(e), false);
      return false;
    }
    let replay = 0;
    if (t.resume) {
      if (!equalBytes(p.sessionId, this.sid!)) {
        this.end(CloseCode.ProtocolError, "server hello echoes another session ID", false);
        return false;
      }
      try {
        replay = this.stream.attach(p.delivered);
      } catch (e) {
        this.end(CloseCode.TooFarBehind, (e as Error).message, false);
        return false;
      }
    } else {
      if (p.delivered !== 0) {
        this.end(CloseCode.ProtocolError, "new session with a non-zero delivered offset", false);
        return false;
      }
      const restart = this.counters.transports > 0;
      this.sid = p.sessionId;
      this.resumeSecret = deriveResumeSecret(res.result.hash);
      replay = this.stream.attach(0);
      t.resume = restart; // a restarted session looks like a resume to the application
    }
    this.stream.peerWindow = p.window;
    this.ttlMs = p.ttl * 1000;
    clearTimeout(t.timer);
    t.send = res.result.send;
    t.recv = res.result.recv;
    t.plain = p.frameMode === FRAME_MODE_PLAIN;
    t.ready = true;
    t.hs = undefined;
    this.failures = 0;
    this.counters.transports++;
    // CONFIRM is sealed in both frame modes: it proves we hold this handshake's keys (§5.7).
    this.sendFrame(t, { type: FRAME_CONFIRM, offset: this.stream.delivered }, true);
    this.startHeartbeat();
    if (t.resume) {
      this.counters.resumes++;
      this.counters.replayedBytes += replay;
      const downtime = now() - this.lostAt;
      this.setState("open");
      this.dispatchEvent(new ResumedEvent(replay, downtime, this.counters.resumes));
    } else {
      this.setState("open");
      this.openedResolve();
      this.dispatchEvent(new Event("open"));
    }
    this.pump();
    return true;
  }

  /** lose handles the end of a transport: the session resumes on a new one. */
  private lose(t: Transport, code: number, reason: string): void {
    if (t.dead) return;
    t.dead = true;
    clearTimeout(t.timer);
    t.settle(false);
    try {
      t.ws.onmessage = null;
      t.ws.onclose = null;
      t.ws.close(4015, "");
    } catch {
      /* ignore */
    }
    if (this.t !== t) return;
    this.t = undefined;
    clearInterval(this.hbTimer);
    this.hbTimer = undefined;
    this.pings.clear();
    this.probeAt = 0;
    if (this.endInfo) return;
    this.dispatchEvent(new TransportEvent(code, reason));
    if (this.stream.over) {
      this.end(this.stream.localCloseInfo?.code ?? 1000, this.stream.localCloseInfo?.reason ?? "", true);
      return;
    }
    if (t.ready) {
      this.lostAt = now();
      if (this.sid) this.setState("reconnecting");
      void this.attempt();
    }
    // A transport that never got ready is retried by the attempt loop that started it.
  }

  // ---- frames ----

  /** sendFrame sends f after every frame sent before it: sealed, or plain on a plain-in-TLS transport. */
  private sendFrame(t: Transport, f: Frame, seal = !t.plain): void {
    const p = this.wrap(t, encodeFrame(f), seal);
    p.catch(() => {});
    t.lastTx = now();
    t.tx = t.tx.then(() => p).then((ct) => {
      if (!t.dead) t.ws.send(ct as Uint8Array<ArrayBuffer>);
    }).catch((e) => this.onTransportError(t, e));
  }

  /** wrap returns the transport message of a plaintext frame: its AEAD ciphertext, or the frame itself when !seal. */
  private wrap(t: Transport, pt: Uint8Array, seal: boolean): Promise<Uint8Array> {
    return seal ? t.send!.encrypt(EMPTY, pt) : Promise.resolve(pt);
  }

  /** unwrap returns the plaintext frame of a received transport message: opened, or the message itself in frame mode 1. */
  private unwrap(t: Transport, msg: Uint8Array): Promise<Uint8Array> {
    if (!t.recv) return Promise.reject(new ProtocolError("frame before the handshake completed"));
    return t.plain ? Promise.resolve(msg) : t.recv.decrypt(EMPTY, msg);
  }

  /** pump sends every frame the stream has ready on the current transport. */
  private pump(): void {
    const t = this.t;
    if (!t?.ready || t.dead) return;
    for (let f = this.stream.pull(); f; f = this.stream.pull()) this.sendFrame(t, f);
    if (this.stream.ackPending && !this.ackTimer) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = undefined;
        this.stream.requestAck();
        this.pump();
      }, 20);
    }
    if (this.stream.over) {
      // We answered the peer's CLOSE: the peer closes the transport; stop here.
      const pc = this.stream.peerCloseInfo ?? { code: 1000, reason: "" };
      this.end(pc.code, pc.reason, true);
    }
  }

  private onFrame(t: Transport, f: Frame): void {
    switch (f.type) {
      case FRAME_PING:
        this.sendFrame(t, { type: FRAME_PONG, value: f.value });
        return;
      case FRAME_PONG: {
        const sent = this.pings.get(f.value);
        if (sent !== undefined) {
          this.pings.delete(f.value);
          this.counters.rtt = now() - sent;
          this.dispatchEvent(new RttEvent(this.counters.rtt));
        }
        return;
      }
      case FRAME_CONFIRM:
        throw new ProtocolError("CONFIRM from the server");
    }
    const evs = this.stream.receive(f);
    for (const ev of evs) {
      switch (ev.kind) {
        case "message": {
          this.counters.bytesReceived += ev.data.length;
          const data = ev.text ? new TextDecoder().decode(ev.data) : ev.data;
          this.dispatchEvent(new DualgateMessageEvent(data));
          break;
        }
        case "acked":
          this.resolveDrains();
          break;
        case "peerclose":
          break;
        case "over":
          this.end(ev.code, ev.reason, true);
          return;
      }
      if (this.endInfo) return;
    }
    this.pump();
  }

  private resolveDrains(): void {
    if (this.drainWaiters.length === 0) {
      this.dispatchEvent(new Event("drain"));
      return;
    }
    const b = this.stream.bufferedAmount;
    const keep = [];
    for (const w of this.drainWaiters) {
      if (b <= w.threshold) w.resolve();
      else keep.push(w);
    }
    this.drainWaiters = keep;
    this.dispatchEvent(new Event("drain"));
  }

  private sendPing(): void {
    const t = this.t;
    if (!t?.ready) return;
    const v = this.pingSeq++;
    this.pings.set(v, now());
    if (this.pings.size > 16) this.pings.delete(this.pings.keys().next().value!);
    this.lastPing = now();
    this.sendFrame(t, { type: FRAME_PING, value: v });
  }

  private startHeartbeat(): void {
    clearInterval(this.hbTimer);
    const tick = Math.max(50, Math.min(1000, this.o.heartbeatInterval / 4));
    this.lastPing = now();
    this.hbTimer = setInterval(() => {
      const t = this.t;
      if (!t?.ready) return;
      const n = now();
      if (n - t.lastRx > this.o.deadPeerTimeout) {
        this.lose(t, CloseCode.TransportDead, "dead-peer timeout");
        return;
      }
      if (this.probeAt && n - this.probeAt > this.o.probeTimeout && t.lastRx < this.probeAt) {
        this.lose(t, CloseCode.TransportDead, "probe unanswered");
        return;
      }
      if (n - this.lastPing >= this.o.heartbeatInterval) this.sendPing();
    }, tick);
  }
}

/** connect opens a session to a Dualgate gateway route (ws:// or wss:// URL, or a provider of one). */
export function connect(url: string | URL | UrlProvider, options?: ConnectOptions): DualgateSocket {
  return new DualgateSocket(url, options);
}
