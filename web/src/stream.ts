// The stream state of one session, shared by every transport of it
// (docs/protocol.md §5): the replay buffer of sent messages with their
// boundaries, acknowledgement and window accounting, message assembly on the
// receive side and the CLOSE handshake. It is pure logic: the caller feeds it
// decoded frames and pulls the frames to send, so it runs the same in Node
// unit tests and in the browser. Both ends of a session can use it.

import { CloseCode, FLAG_FIN, FLAG_TEXT, FRAME_ACK, FRAME_CLOSE, FRAME_DATA, MIN_WINDOW } from "./constants.js";
import { decodeUtf8 } from "./bytes.js";
import { type Frame, ProtocolError, truncReason } from "./frame.js";

/** StreamOptions sizes a Stream. */
export interface StreamOptions {
  /** window is our receive window, announced in the handshake. */
  window: number;
  /** maxMessageSize bounds one assembled incoming message (1009 beyond it). */
  maxMessageSize: number;
  /** chunkSize is the largest DATA payload we send (≤ 65,501; also capped at a quarter of the peer's window). */
  chunkSize: number;
}

/** StreamEvent is an outcome of a received frame. */
export type StreamEvent =
  | { kind: "message"; data: Uint8Array; text: boolean }
  | { kind: "acked" }
  | { kind: "peerclose"; code: number; reason: string }
  | { kind: "over"; code: number; reason: string; initiator: "local" | "peer" };

interface Chunk {
  offset: number;
  data: Uint8Array;
  flags: number;
}

interface CloseInfo {
  code: number;
  reason: string;
  offset: number;
}

/**
 * Stream holds the per-session stream state. It is not safe for concurrent
 * use (JavaScript has none); every method is synchronous.
 */
export class Stream {
  readonly opts: StreamOptions;
  /** peerWindow is the peer's receive window from the handshake. */
  peerWindow = 0;

  // Send side. Offsets count application bytes of our direction.
  private chunks: Chunk[] = [];
  private head = 0; // first chunk not yet freed
  private idx = 0; // chunk that holds cursor
  /** sendEnd is the number of bytes queued by the application. */
  sendEnd = 0;
  /** acked is the largest delivered offset the peer has acknowledged. */
  acked = 0;
  /** cursor is the next offset to transmit on the current transport. */
  cursor = 0;
  /** highestSent is the end of everything transmitted so far on any transport. */
  highestSent = 0;

  // Receive side.
  /** delivered is the count of peer bytes delivered (taken into messages). */
  delivered = 0;
  private lastAckSent = 0;
  private ackDue = false;
  private parts: Uint8Array[] = [];
  private partsLen = 0;
  private partsText = false;
  /** duplicateBytes counts received bytes dropped as already delivered. */
  duplicateBytes = 0;

  private localClose?: CloseInfo;
  private closeSent = false; // on the current transport
  private closeEverSent = false;
  private peerClose?: CloseInfo;
  private peerCloseDone = false;
  /** over is set once both CLOSEs have been exchanged. */
  over = false;

  constructor(opts: StreamOptions) {
    this.opts = opts;
  }

  /** bufferedAmount is the number of queued bytes the peer has not acknowledged. */
  get bufferedAmount(): number {
    return this.sendEnd - this.acked;
  }

  /** closeWasSent reports whether our CLOSE went out on some transport. */
  get closeWasSent(): boolean {
    return this.closeEverSent;
  }

  /** closing reports whether a local CLOSE is queued or sent. */
  get closing(): boolean {
    return this.localClose !== undefined;
  }

  /** queueMessage appends one application message; empty messages are not sent. */
  queueMessage(data: Uint8Array, text: boolean): void {
    if (this.localClose || this.over) throw new Error("dualgate: send after close");
    if (data.length === 0) return;
    // A chunk never exceeds a quarter of the peer's window (or the smallest
    // window before the handshake told us), so the window never deadlocks.
    const size = Math.max(1, Math.min(this.opts.chunkSize, this.peerWindow ? this.peerWindow >> 2 : MIN_WINDOW));
    for (let o = 0; o < data.length; o += size) {
      const end = Math.min(data.length, o + size);
      const flags = (text ? FLAG_TEXT : 0) | (end === data.length ? FLAG_FIN : 0);
      this.chunks.push({ offset: this.sendEnd + o, data: data.slice(o, end), flags });
    }
    this.sendEnd += data.length;
  }

  /** close queues a local CLOSE after everything queued so far. */
  close(code: number, reason: string): void {
    if (this.localClose || this.over) return;
    this.localClose = { code, reason: truncReason(reason), offset: this.sendEnd };
  }

  /** ackPending reports whether delivered bytes have not been acknowledged yet. */
  get ackPending(): boolean {
    return this.delivered > this.lastAckSent;
  }

  /** requestAck makes the next pull send an ACK when one is pending (the 20 ms rule). */
  requestAck(): void {
    if (this.ackPending) this.ackDue = true;
  }

  /**
   * pull returns the next frame to transmit on the current transport, or null
   * when there is nothing to send (or the peer's window is full).
   */
  pull(): Frame | null {
    if (this.over) return null;
    if (this.cursor < this.sendEnd) {
      while (this.idx < this.chunks.length - 1 && this.chunks[this.idx]!.offset + this.chunks[this.idx]!.data.length <= this.cursor) this.idx++;
      const c = this.chunks[this.idx]!;
      const end = c.offset + c.data.length;
      if (end - this.acked <= this.peerWindow) {
        const f: Frame = { type: FRAME_DATA, flags: c.flags, offset: this.cursor, ack: this.delivered, payload: c.data.subarray(this.cursor - c.offset) };
        this.cursor = end;
        if (end > this.highestSent) this.highestSent = end;
        this.lastAckSent = this.delivered;
        this.ackDue = false;
        return f;
      }
    }
    if (this.ackDue) {
      this.ackDue = false;
      this.lastAckSent = this.delivered;
      return { type: FRAME_ACK, offset: this.delivered };
    }
    if (this.localClose && !this.closeSent && this.cursor >= this.sendEnd) {
      this.closeSent = true;
      this.closeEverSent = true;
      if (this.peerCloseDone) this.over = true;
      return { type: FRAME_CLOSE, offset: this.localClose.offset, code: this.localClose.code, reason: this.localClose.reason };
    }
    return null;
  }

  /**
   * attach starts a (new or resumed) transport: peerDelivered is the offset the
   * peer reported in its hello or CONFIRM. It frees what the peer has, rewinds
   * the cursor for retransmission and returns the number of bytes that will be
   * sent again. An offset outside [acked, highestSent] is error 4003.
   */
  attach(peerDelivered: number): number {
    if (peerDelivered < this.acked || peerDelivered > this.highestSent) {
      throw new ProtocolError(`peer delivered offset ${peerDelivered} outside [${this.acked}, ${this.highestSent}]`, CloseCode.TooFarBehind);
    }
    this.onAck(peerDelivered);
    const replay = this.highestSent - peerDelivered;
    this.cursor = peerDelivered;
    this.idx = this.head;
    this.closeSent = false;
    this.lastAckSent = this.delivered; // CONFIRM / server hello carried it
    this.ackDue = false;
    return replay;
  }

  /** receive processes one decoded frame other than CONFIRM, PING and PONG. */
  receive(f: Frame): StreamEvent[] {
    const out: StreamEvent[] = [];
    switch (f.type) {
      case FRAME_ACK:
        if (this.onAck(f.offset)) out.push({ kind: "acked" });
        break;
      case FRAME_DATA:
        if (this.onAck(f.ack)) out.push({ kind: "acked" });
        this.onData(f.flags, f.offset, f.payload, out);
        break;
      case FRAME_CLOSE:
        this.onClose(f.offset, f.code, f.reason, out);
        break;
      default:
        throw new ProtocolError(`unexpected frame 0x${f.type.toString(16)}`);
    }
    return out;
  }

  private onAck(a: number): boolean {
    if (a <= this.acked) return false;
    if (a > this.highestSent) throw new ProtocolError(`acknowledgement ${a} beyond the ${this.highestSent} bytes sent`);
    this.acked = a;
    while (this.head < this.chunks.length) {
      const c = this.chunks[this.head]!;
      if (c.offset + c.data.length > a) break;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.idx = Math.max(0, this.idx - this.head);
      this.head = 0;
    }
    if (this.idx < this.head) this.idx = this.head;
    return true;
  }

  private onData(flags: number, offset: number, payload: Uint8Array, out: StreamEvent[]): void {
    const end = offset + payload.length;
    if (this.peerClose && end > this.peerClose.offset) throw new ProtocolError("DATA beyond the peer's final offset");
    if (offset > this.delivered) throw new ProtocolError(`DATA at ${offset} leaves a gap after ${this.delivered}`);
    if (end <= this.delivered) {
      this.duplicateBytes += payload.length;
      return;
    }
    if (end > this.delivered + this.opts.window) throw new ProtocolError("DATA beyond the receive window");
    const skip = this.delivered - offset;
    this.duplicateBytes += skip;
    const text = (flags & FLAG_TEXT) !== 0;
    if (this.partsLen > 0 && text !== this.partsText) throw new ProtocolError("TEXT flag changes within a message");
    const fresh = payload.subarray(skip);
    if (this.partsLen + fresh.length > this.opts.maxMessageSize) {
      throw new ProtocolError(`message larger than ${this.opts.maxMessageSize} bytes`, CloseCode.TooBig);
    }
    this.parts.push(fresh.slice());
    this.partsLen += fresh.length;
    this.partsText = text;
    this.delivered = end;
    if (flags & FLAG_FIN) {
      const data = this.parts.length === 1 ? this.parts[0]! : joinParts(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
      if (text) {
        try {
          decodeUtf8(data);
        } catch {
          throw new ProtocolError("text message is not UTF-8");
        }
      }
      out.push({ kind: "message", data, text });
    }
    if (this.delivered - this.lastAckSent >= this.opts.window / 4) this.ackDue = true;
    if (this.peerClose && this.delivered === this.peerClose.offset) this.peerClosed(out);
  }

  private onClose(offset: number, code: number, reason: string, out: StreamEvent[]): void {
    if (this.peerClose) {
      if (offset !== this.peerClose.offset) throw new ProtocolError("second CLOSE with another final offset");
      return; // resent after a resume
    }
    if (offset < this.delivered) throw new ProtocolError("CLOSE final offset below delivered data");
    this.peerClose = { code, reason, offset };
    if (this.delivered === offset) this.peerClosed(out);
  }

  private peerClosed(out: StreamEvent[]): void {
    if (this.peerCloseDone) return;
    this.peerCloseDone = true;
    const pc = this.peerClose!;
    this.parts = [];
    this.partsLen = 0;
    if (this.localClose && this.closeEverSent) {
      // The peer answered our CLOSE.
      this.over = true;
      out.push({ kind: "over", code: this.localClose.code, reason: this.localClose.reason, initiator: "local" });
      return;
    }
    out.push({ kind: "peerclose", code: pc.code, reason: pc.reason });
    // Answer with our own CLOSE (same code) after our last DATA; pull sends it.
    if (!this.localClose) this.localClose = { code: pc.code, reason: pc.reason, offset: this.sendEnd };
  }

  /** peerCloseInfo returns the peer's CLOSE once it has arrived. */
  get peerCloseInfo(): { code: number; reason: string } | undefined {
    return this.peerClose && { code: this.peerClose.code, reason: this.peerClose.reason };
  }

  /** localCloseInfo returns our CLOSE once queued. */
  get localCloseInfo(): { code: number; reason: string } | undefined {
    return this.localClose && { code: this.localClose.code, reason: this.localClose.reason };
  }
}

function joinParts(parts: Uint8Array[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
