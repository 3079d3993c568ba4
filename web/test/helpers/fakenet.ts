// An in-memory WebSocket pair and a JavaScript responder of the protocol, so
// that the client state machine can be tested in Node without a gateway. The
// real gateway is exercised by the browser tests.

import { concat, toHex, utf8 } from "../../src/bytes.js";
import { FRAME_CONFIRM, FRAME_PING, FRAME_PONG, MSG_SERVER_HELLO, PATTERN_NK, PROLOGUE_PREFIX, SUBPROTOCOL, type PatternId, type SuiteId } from "../../src/constants.js";
import {
  decodeFrame, decodeHelloHeader, decodeHelloPayload, encodeFrame, encodeRefuse, encodeServerPayload, type Frame, type HelloHeader,
} from "../../src/frame.js";
import { type CipherState, Handshake, type KeyPair, deriveResumeSecret, keyPair } from "../../src/noise.js";
import { Stream } from "../../src/stream.js";
import { randomBytes } from "../../src/aead.js";

const EMPTY = new Uint8Array(0);

type Handler = { onMessage(b: Uint8Array): void; onClose(code: number): void };

/** FakeWebSocket is the client end of an in-memory WebSocket. */
export class FakeWebSocket {
  static nets = new Map<string, TestServer>();
  binaryType = "blob";
  readyState = 0;
  protocol = "";
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: ArrayBuffer | string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  server?: Handler;

  constructor(readonly url: string, protocols?: string | string[]) {
    const srv = FakeWebSocket.nets.get(url);
    setTimeout(() => {
      if (!srv || srv.unreachable || !(protocols === SUBPROTOCOL || (Array.isArray(protocols) && protocols.includes(SUBPROTOCOL)))) {
        this.readyState = 3;
        this.onclose?.({ code: 1006, reason: "" });
        return;
      }
      this.readyState = 1;
      this.protocol = SUBPROTOCOL;
      this.server = srv.accept(this);
      this.onopen?.({});
    }, 0);
  }

  send(data: Uint8Array | ArrayBuffer): void {
    if (this.readyState !== 1) return;
    const copy = new Uint8Array(data instanceof ArrayBuffer ? data : data.slice());
    setTimeout(() => {
      if (!this.serverClosed) this.server?.onMessage(copy);
    }, 0);
  }

  close(code = 1000, _reason = ""): void {
    this.clientClosed = true;
    if (this.readyState >= 2) return;
    this.readyState = 3;
    setTimeout(() => {
      this.server?.onClose(code);
      this.onclose?.({ code, reason: "" });
    }, 0);
  }

  /** deliver is called by the server side. */
  deliver(b: Uint8Array): void {
    if (this.readyState !== 1) return;
    const buf = b.slice().buffer;
    setTimeout(() => {
      // Messages sent before a server close still arrive, as on a real WebSocket.
      if (!this.clientClosed) this.onmessage?.({ data: buf });
    }, 0);
  }
  private clientClosed = false;
  private serverClosed = false;

  /** serverClose closes from the server side with a carrier code. */
  serverClose(code: number, reason = ""): void {
    this.serverClosed = true;
    if (this.readyState >= 2) return;
    this.readyState = 3;
    setTimeout(() => {
      this.server?.onClose(code);
      this.onclose?.({ code, reason });
    }, 0);
  }
}

interface ServerSession {
  id: Uint8Array;
  stream: Stream;
  secret: Uint8Array;
  counter: number;
  expired: boolean;
  conn?: ServerConn;
  ackTimer?: ReturnType<typeof setTimeout>;
}

/** TestServer is a minimal responder: new sessions, resume, echo, close. */
export class TestServer {
  readonly staticKey: KeyPair = keyPair();
  readonly sessions = new Map<string, ServerSession>();
  readonly conns = new Set<ServerConn>();
  window = 64 << 10;
  ttl = 120;
  unreachable = false;
  /** silent makes the server swallow everything (a half-open transport). */
  silent = false;
  /** refuseNext makes the next hello get a refusal. */
  refuseNext?: { code: number; reason: string };
  /** swallowCloseAnswer loses the server's answer to a client CLOSE with its transport. */
  swallowCloseAnswer = false;
  /** echo sends every message back (default true). */
  echo = true;
  received: { data: Uint8Array; text: boolean }[] = [];
  handshakes = 0;
  /** frameMode answers a PLAIN_IN_TLS hello (§5.7): 1 as a gateway that terminates TLS 1.3 itself, 0 to keep sealing. */
  frameMode = 1;
  /** tamperPayload rewrites the plaintext server hello payload before it is sealed (to test the client's checks). */
  tamperPayload?: (p: Uint8Array) => Uint8Array;
  /** hellos are the headers of every client hello, in order. */
  hellos: HelloHeader[] = [];
  /** record keeps every transport message after the handshake in wire. */
  record = false;
  /** wire holds, with record, each transport message as sent (msg) and the frame it carries, per transport (conn counts from 1). */
  wire: { conn: number; dir: "c2s" | "s2c"; msg: Uint8Array; frame: Uint8Array }[] = [];
  /** accepted counts the transports accepted. */
  accepted = 0;

  constructor(readonly url: string) {
    FakeWebSocket.nets.set(url, this);
  }

  accept(ws: FakeWebSocket): Handler {
    const c = new ServerConn(this, ws);
    this.conns.add(c);
    return c;
  }

  /** cutAll kills every transport without a close handshake. */
  cutAll(code = 1006): void {
    for (const c of this.conns) c.ws.serverClose(code);
  }

  /** closeSession sends CLOSE on a session (server-initiated close). */
  closeSession(code: number, reason: string): void {
    for (const s of this.sessions.values()) {
      s.stream.close(code, reason);
      s.conn?.pump();
    }
  }
}

class ServerConn implements Handler {
  private hs?: Handshake;
  private send?: CipherState;
  private recv?: CipherState;
  private session?: ServerSession;
  private confirmed = false;
  private chain: Promise<void> = Promise.resolve();
  private state: "hello" | "confirm" | "open" | "dead" = "hello";
  private pendingSession?: { id: Uint8Array; secret: Uint8Array; existing?: ServerSession; counter: number };
  /** plain is frame mode 1: every message after CONFIRM is the frame itself. */
  private plain = false;
  private readonly n: number;

  constructor(readonly srv: TestServer, readonly ws: FakeWebSocket) {
    this.n = ++srv.accepted;
  }

  private log(dir: "c2s" | "s2c", msg: Uint8Array, frame: Uint8Array): void {
    if (this.srv.record) this.srv.wire.push({ conn: this.n, dir, msg: msg.slice(), frame: frame.slice() });
  }

  onMessage(b: Uint8Array): void {
    if (this.srv.silent || this.state === "dead") return;
    this.chain = this.chain.then(() => this.handle(b)).catch((e) => {
      this.ws.serverClose(1002, String(e));
      this.state = "dead";
    });
  }

  onClose(_code: number): void {
    this.state = "dead";
    this.srv.conns.delete(this);
    if (this.session?.conn === this) this.session.conn = undefined;
  }

  private refuse(code: number, reason: string): void {
    this.ws.deliver(encodeRefuse({ code, reason }));
    this.ws.serverClose(code, reason);
    this.state = "dead";
  }

  private async handle(b: Uint8Array): Promise<void> {
    if (this.state === "hello") return this.onHello(b);
    // CONFIRM is sealed in both frame modes; in mode 1 nothing after it is (§5.7).
    const pt = this.plain && this.state === "open" ? b : await this.recv!.decrypt(EMPTY, b);
    this.log("c2s", b, pt);
    const f = decodeFrame(pt);
    if (this.state === "confirm") {
      if (f.type !== FRAME_CONFIRM) throw new Error("first frame is not CONFIRM");
      const p = this.pendingSession!;
      let s = p.existing;
      if (!s) {
        s = { id: p.id, secret: p.secret, counter: 0, expired: false, stream: new Stream({ window: this.srv.window, maxMessageSize: 64 << 20, chunkSize: 16 << 10 }) };
        this.srv.sessions.set(toHex(p.id), s);
      } else if (s.conn && s.conn !== this) {
        s.conn.ws.serverClose(4014, "superseded");
      }
      s.stream.peerWindow = this.peerWindow;
      s.stream.attach(f.offset);
      s.conn = this;
      this.session = s;
      this.state = "open";
      this.pump();
      return;
    }
    this.onFrame(f);
  }

  private peerWindow = 0;

  private async onHello(b: Uint8Array): Promise<void> {
    this.srv.handshakes++;
    const { header, headerLen } = decodeHelloHeader(b);
    this.srv.hellos.push(header);
    if (this.srv.refuseNext) {
      const r = this.srv.refuseNext;
      this.srv.refuseNext = undefined;
      return this.refuse(r.code, r.reason);
    }
    const resume = header.sessionId !== undefined;
    let existing: ServerSession | undefined;
    if (resume) {
      existing = this.srv.sessions.get(toHex(header.sessionId!));
      if (!existing) return this.refuse(4000, "unknown session");
      if (existing.expired) return this.refuse(4001, "session expired");
    }
    this.hs = new Handshake({
      initiator: false,
      suite: header.suite as SuiteId,
      pattern: header.pattern as PatternId,
      prologue: concat(utf8(PROLOGUE_PREFIX), b.subarray(0, headerLen)),
      psk: existing?.secret,
      staticKey: header.pattern === PATTERN_NK ? this.srv.staticKey : undefined,
    });
    let payload: Uint8Array;
    try {
      payload = await this.hs.readMessage1(b.subarray(headerLen));
    } catch {
      return this.refuse(resume ? 4002 : header.pattern === PATTERN_NK ? 4008 : 1002, "does not decrypt");
    }
    const hp = decodeHelloPayload(payload, resume);
    if (existing) {
      if (hp.counter! <= existing.counter) return this.refuse(4009, "replayed resume");
      existing.counter = hp.counter!;
    }
    this.peerWindow = hp.window;
    const id = existing?.id ?? randomBytes(16);
    const frameMode = header.plainInTLS ? this.srv.frameMode : undefined;
    this.plain = frameMode === 1;
    let sp = encodeServerPayload({ sessionId: id, delivered: existing?.stream.delivered ?? 0, window: this.srv.window, ttl: this.srv.ttl, frameMode });
    if (this.srv.tamperPayload) sp = this.srv.tamperPayload(sp);
    const { msg, result } = await this.hs.writeMessage2(sp);
    this.send = result.send;
    this.recv = result.recv;
    this.pendingSession = { id, secret: existing?.secret ?? deriveResumeSecret(result.hash), existing, counter: hp.counter ?? 0 };
    this.state = "confirm";
    this.ws.deliver(concat(Uint8Array.of(MSG_SERVER_HELLO), msg));
  }

  private onFrame(f: Frame): void {
    const s = this.session!;
    if (f.type === FRAME_PING) {
      this.sendFrame({ type: FRAME_PONG, value: f.value });
      return;
    }
    if (f.type === FRAME_PONG) return;
    for (const ev of s.stream.receive(f)) {
      if (ev.kind === "message") {
        this.srv.received.push({ data: ev.data, text: ev.text });
        if (this.srv.echo && !s.stream.closing) s.stream.queueMessage(ev.data, ev.text);
      }
      if (ev.kind === "over") {
        this.ws.serverClose(1000, "");
        this.srv.sessions.delete(toHex(s.id));
        return;
      }
    }
    this.pump();
  }

  private sendFrame(f: Frame): void {
    const pt = encodeFrame(f);
    const p = this.plain ? Promise.resolve(pt) : this.send!.encrypt(EMPTY, pt);
    this.chainTx = this.chainTx.then(() => p).then((ct) => {
      this.log("s2c", ct, pt);
      this.ws.deliver(ct);
    });
  }
  private chainTx: Promise<void> = Promise.resolve();

  pump(): void {
    const s = this.session;
    if (!s || s.conn !== this || this.state !== "open") return;
    for (let f = s.stream.pull(); f; f = s.stream.pull()) {
      if (f.type === 0x15 && s.stream.over && this.srv.swallowCloseAnswer) {
        this.srv.sessions.delete(toHex(s.id));
        this.ws.serverClose(1006);
        return;
      }
      this.sendFrame(f);
    }
    if (s.stream.ackPending && !s.ackTimer) {
      s.ackTimer = setTimeout(() => {
        s.ackTimer = undefined;
        s.stream.requestAck();
        s.conn?.pump();
      }, 20);
    }
    if (s.stream.over) this.srv.sessions.delete(toHex(s.id));
  }
}
