import { type ConnectionState, type DualgateSocketEventMap } from "./events.js";
import { type ConnectOptions, type Opts, type SocketStats, type UrlProvider } from "./options.js";
/** SessionEndError is thrown by drain() and opened when the session ended. */
export declare class SessionEndError extends Error {
    readonly code: number;
    readonly reason: string;
    constructor(code: number, reason: string);
}
/**
 * offersPlainInTLS reports whether a transport to url sets PLAIN_IN_TLS in its
 * hello (docs/protocol.md §5.7): the carrier is TLS whose certificate the
 * browser verifies (`wss:`, or `https:`, which browsers open as `wss:`; a
 * relative URL counts as the page's scheme), the pattern is NN, and the
 * application did not ask to seal always. It is decided per transport, since
 * a URL provider may hand out another URL for each.
 */
export declare function offersPlainInTLS(url: string, o: Pick<Opts, "pinned" | "alwaysSeal">): boolean;
/**
 * DualgateSocket is a resumable encrypted message stream to a Dualgate
 * gateway, in the spirit of WebSocket. Create it with connect(). Its zero
 * value is not usable. JavaScript is single-threaded; all methods may be
 * called at any time from the page's event loop.
 */
export declare class DualgateSocket extends EventTarget {
    private readonly o;
    private readonly urlProvider;
    private readonly stream;
    private st;
    private t?;
    private sid?;
    private resumeSecret?;
    private resumeCounter;
    /** serverHeard is set once an authenticated frame arrived: the server holds the session. */
    private serverHeard;
    private retryNow;
    private readonly created;
    private ttlMs;
    private failures;
    private lostAt;
    private retryTimer?;
    private retryResolve?;
    private hbTimer?;
    private ackTimer?;
    private closeTimer?;
    private pingSeq;
    private pings;
    private lastPing;
    private probeAt;
    private endInfo?;
    private drainWaiters;
    private readonly counters;
    private readonly unlisten;
    private openedResolve;
    private openedReject;
    /** opened resolves on the first open event and rejects if the session ends before it. */
    readonly opened: Promise<void>;
    constructor(url: string | URL | UrlProvider, options?: ConnectOptions);
    /** state is the connection state. */
    get state(): ConnectionState;
    /** bufferedAmount is the number of sent bytes the gateway has not acknowledged yet. */
    get bufferedAmount(): number;
    /**
     * plainInTLS is true while the current transport uses plain-in-TLS frames
     * (docs/protocol.md §5.7): the gateway accepted the offer of a `wss:`
     * transport without serverKey or alwaysSeal, and every frame after CONFIRM
     * is protected by TLS alone. It is false without an open transport.
     */
    get plainInTLS(): boolean;
    /** sessionId is the hex session ID once the first handshake completed. */
    get sessionId(): string | undefined;
    /** stats returns a snapshot of the session's counters. */
    get stats(): SocketStats;
    /**
     * send queues one message: a string is a text message, bytes a binary one.
     * It never blocks; it returns false when bufferedAmount is above the
     * highWaterMark, as a hint to await drain().
     */
    send(data: string | ArrayBuffer | ArrayBufferView): boolean;
    /**
     * drain resolves once bufferedAmount is at most threshold (default 0, i.e.
     * everything acknowledged). It rejects with SessionEndError if the session
     * ends first.
     */
    drain(threshold?: number): Promise<void>;
    /**
     * close ends the session after everything sent so far has been delivered:
     * code is 1000 or 3000–4999, reason at most 123 UTF-8 bytes. A close
     * survives transport losses; after closeTimeout it ends without answer.
     */
    close(code?: number, reason?: string): void;
    /**
     * dropTransport kills the current transport at once, as a network failure
     * would; the session resumes on a new one. For demos and tests.
     */
    dropTransport(): void;
    /** ping sends a PING and resolves with the round-trip time in ms; it rejects after deadPeerTimeout without answer. */
    ping(): Promise<number>;
    /** messages returns a ReadableStream of the messages that arrive from now on; it ends when the session ends. */
    messages(): ReadableStream<string | Uint8Array>;
    /** Symbol.asyncIterator iterates the messages that arrive from now on until the session ends. */
    [Symbol.asyncIterator](): AsyncGenerator<string | Uint8Array, void, undefined>;
    addEventListener<K extends keyof DualgateSocketEventMap>(type: K, listener: (ev: DualgateSocketEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
    addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
    removeEventListener<K extends keyof DualgateSocketEventMap>(type: K, listener: (ev: DualgateSocketEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
    removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
    private setState;
    private end;
    private closeWs;
    private listenLifecycle;
    /** nudge reacts to a network or page lifecycle event: retry now, or probe the open transport. */
    private nudge;
    private attempt;
    /** runTransport opens one transport; it resolves true once the handshake completed. */
    private runTransport;
    private onTransportError;
    /** failSession ends the session after a protocol violation by the authenticated peer. */
    private failSession;
    private sendHello;
    /** onHello handles the server's answer to the client hello. */
    private onHello;
    /** lose handles the end of a transport: the session resumes on a new one. */
    private lose;
    /** sendFrame sends f after every frame sent before it: sealed, or plain on a plain-in-TLS transport. */
    private sendFrame;
    /** wrap returns the transport message of a plaintext frame: its AEAD ciphertext, or the frame itself when !seal. */
    private wrap;
    /** unwrap returns the plaintext frame of a received transport message: opened, or the message itself in frame mode 1. */
    private unwrap;
    /** pump sends every frame the stream has ready on the current transport. */
    private pump;
    private onFrame;
    private resolveDrains;
    private sendPing;
    private startHeartbeat;
}
/** connect opens a session to a Dualgate gateway route (ws:// or wss:// URL, or a provider of one). */
export declare function connect(url: string | URL | UrlProvider, options?: ConnectOptions): DualgateSocket;
