// Package entry: the public API of the Dualgate browser client.

export { connect, DualgateSocket, SessionEndError } from "./client.js";
export type { ConnectOptions, CipherPreference, SocketStats, UrlProvider, WebSocketConstructor } from "./options.js";
export type { BackoffOptions } from "./backoff.js";
export {
  DualgateCloseEvent, DualgateMessageEvent, ResumedEvent, RttEvent, StateChangeEvent, TransportEvent,
} from "./events.js";
export type { ConnectionState, DualgateSocketEventMap } from "./events.js";
export { CloseCode, SUBPROTOCOL, isFinalRefusal } from "./constants.js";
