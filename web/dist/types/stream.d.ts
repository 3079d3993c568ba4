import { type Frame } from "./frame.js";
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
export type StreamEvent = {
    kind: "message";
    data: Uint8Array;
    text: boolean;
} | {
    kind: "acked";
} | {
    kind: "peerclose";
    code: number;
    reason: string;
} | {
    kind: "over";
    code: number;
    reason: string;
    initiator: "local" | "peer";
};
/**
 * Stream holds the per-session stream state. It is not safe for concurrent
 * use (JavaScript has none); every method is synchronous.
 */
export declare class Stream {
    readonly opts: StreamOptions;
    /** peerWindow is the peer's receive window from the handshake. */
    peerWindow: number;
    private chunks;
    private head;
    private idx;
    /** sendEnd is the number of bytes queued by the application. */
    sendEnd: number;
    /** acked is the largest delivered offset the peer has acknowledged. */
    acked: number;
    /** cursor is the next offset to transmit on the current transport. */
    cursor: number;
    /** highestSent is the end of everything transmitted so far on any transport. */
    highestSent: number;
    /** delivered is the count of peer bytes delivered (taken into messages). */
    delivered: number;
    private lastAckSent;
    private ackDue;
    private parts;
    private partsLen;
    private partsText;
    /** duplicateBytes counts received bytes dropped as already delivered. */
    duplicateBytes: number;
    private localClose?;
    private closeSent;
    private closeEverSent;
    private peerClose?;
    private peerCloseDone;
    /** over is set once both CLOSEs have been exchanged. */
    over: boolean;
    constructor(opts: StreamOptions);
    /** bufferedAmount is the number of queued bytes the peer has not acknowledged. */
    get bufferedAmount(): number;
    /** closeWasSent reports whether our CLOSE went out on some transport. */
    get closeWasSent(): boolean;
    /** closing reports whether a local CLOSE is queued or sent. */
    get closing(): boolean;
    /** queueMessage appends one application message; empty messages are not sent. */
    queueMessage(data: Uint8Array, text: boolean): void;
    /** close queues a local CLOSE after everything queued so far. */
    close(code: number, reason: string): void;
    /** ackPending reports whether delivered bytes have not been acknowledged yet. */
    get ackPending(): boolean;
    /** requestAck makes the next pull send an ACK when one is pending (the 20 ms rule). */
    requestAck(): void;
    /**
     * pull returns the next frame to transmit on the current transport, or null
     * when there is nothing to send (or the peer's window is full).
     */
    pull(): Frame | null;
    /**
     * attach starts a (new or resumed) transport: peerDelivered is the offset the
     * peer reported in its hello or CONFIRM. It frees what the peer has, rewinds
     * the cursor for retransmission and returns the number of bytes that will be
     * sent again. An offset outside [acked, highestSent] is error 4003.
     */
    attach(peerDelivered: number): number;
    /** receive processes one decoded frame other than CONFIRM, PING and PONG. */
    receive(f: Frame): StreamEvent[];
    private onAck;
    private onData;
    private onClose;
    private peerClosed;
    /** peerCloseInfo returns the peer's CLOSE once it has arrived. */
    get peerCloseInfo(): {
        code: number;
        reason: string;
    } | undefined;
    /** localCloseInfo returns our CLOSE once queued. */
    get localCloseInfo(): {
        code: number;
        reason: string;
    } | undefined;
}
