import { type BackoffOptions } from "./backoff.js";
import { type ConnectionState, type DualgateSocketEventMap } from "./events.js";
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
    /** WebSocket replaces globalThis.WebSocket (for non-browser runtimes). */
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
/** SessionEndError is thrown by drain() and opened when the session ended. */
export declare class SessionEndError extends Error {
    readonly code: number;
    readonly reason: string;
    constructor(code: number, reason: string);
}
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
    private sendFrame;
    /** pump sends every frame the stream has ready on the current transport. */
    private pump;
    private onFrame;
    private resolveDrains;
    private sendPing;
    private startHeartbeat;
}
/** connect opens a session to a Dualgate gateway route (ws:// or wss:// URL, or a provider of one). */
export declare function connect(url: string | URL | UrlProvider, options?: ConnectOptions): DualgateSocket;
