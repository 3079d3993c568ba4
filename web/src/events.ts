// Typed events of a DualgateSocket.

/** ConnectionState is the state reported by statechange events. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** DualgateMessageEvent carries one application message. */
export class DualgateMessageEvent extends Event {
  /** data is a string for text messages and a Uint8Array for binary ones. */
  readonly data: string | Uint8Array;
  constructor(data: string | Uint8Array) {
    super("message");
    this.data = data;
  }
}

/** StateChangeEvent reports a change of the connection state. */
export class StateChangeEvent extends Event {
  readonly state: ConnectionState;
  readonly previous: ConnectionState;
  constructor(state: ConnectionState, previous: ConnectionState) {
    super("statechange");
    this.state = state;
    this.previous = previous;
  }
}

/** ResumedEvent reports a transport that resumed the session. */
export class ResumedEvent extends Event {
  /** replayedBytes is how many sent bytes were transmitted again on the new transport. */
  readonly replayedBytes: number;
  /** downtime is the time in milliseconds between losing the last transport and resuming. */
  readonly downtime: number;
  /** resumes counts the successful resumes of this session, this one included. */
  readonly resumes: number;
  constructor(replayedBytes: number, downtime: number, resumes: number) {
    super("resumed");
    this.replayedBytes = replayedBytes;
    this.downtime = downtime;
    this.resumes = resumes;
  }
}

/** DualgateCloseEvent reports the end of the session. */
export class DualgateCloseEvent extends Event {
  /** code is the protocol close code (docs/protocol.md §7). */
  readonly code: number;
  readonly reason: string;
  /** wasClean is true when the session ended with an exchange of CLOSE frames. */
  readonly wasClean: boolean;
  constructor(code: number, reason: string, wasClean: boolean) {
    super("close");
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
}

/** TransportEvent reports a transport that was lost (informational). */
export class TransportEvent extends Event {
  /** code is the carrier close code, or 0 when the client dropped the transport itself. */
  readonly code: number;
  readonly reason: string;
  constructor(code: number, reason: string) {
    super("transportclose");
    this.code = code;
    this.reason = reason;
  }
}

/** RttEvent reports a round-trip time measured by PING/PONG. */
export class RttEvent extends Event {
  /** rtt is in milliseconds. */
  readonly rtt: number;
  constructor(rtt: number) {
    super("rtt");
    this.rtt = rtt;
  }
}

/** DualgateSocketEventMap maps event names to their types. */
export interface DualgateSocketEventMap {
  open: Event;
  message: DualgateMessageEvent;
  statechange: StateChangeEvent;
  resumed: ResumedEvent;
  close: DualgateCloseEvent;
  transportclose: TransportEvent;
  rtt: RttEvent;
  drain: Event;
}
