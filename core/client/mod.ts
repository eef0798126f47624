/**
 * The Stage client SDK: connect to a Stage listener from Deno, Node or a browser
 * (with a transport), send and receive framed values (bson, json, raw), correlate
 * requests with replies, reconnect with backoff.
 *
 * The core is runtime-neutral; `deno_transport.ts` and `node_transport.ts` are the
 * only files that touch a runtime, and `StageClient.connect` loads the right one
 * lazily when no `transport` is given. (`nodeTransport` is not re-exported here so
 * that browsers can load this module: import `./node_transport.ts` for it.) Browsers
 * have no raw TCP: {@link webSocketTransport} reaches a `ws://` listener through the
 * standard `WebSocket` instead.
 *
 * @example
 * ```ts ignore
 * import { StageClient } from "./mod.ts";
 * await using client = await StageClient.connect({ host: "127.0.0.1", port: 8801 });
 * const reply = await client.request({ message: "echo", text: "hi" }, { timeout: 1000 });
 * ```
 *
 * @module
 */
export { StageClient } from "./stage_client.ts";
export type { ClientState, RequestOptions, StageClientEvents } from "./stage_client.ts";
export type { StageClientOptions } from "./client_options.ts";
export type { ClientConnection, ClientTransport } from "./transport.ts";
export { denoConnection, denoTransport, denoTransportWith } from "./deno_transport.ts";
export {
  type WebSocketConstructor,
  type WebSocketLike,
  webSocketTransport,
  type WebSocketTransportOptions,
} from "./websocket_transport.ts";
export { type ClientClock, type ClientTimer, systemClientClock } from "./clock.ts";
export { backoffDelay, type ReconnectOptions } from "./backoff.ts";
export {
  bsonCodec,
  type Codec,
  type CodecName,
  jsonCodec,
  rawCodec,
  resolveCodec,
} from "./codecs.ts";
export {
  type EncryptedCodec,
  encryptedCodec,
  type EncryptedCodecOptions,
  ENCRYPTION_OVERHEAD_BYTES,
} from "./crypto_codec.ts";
export {
  DEFAULT_MAX_FRAME,
  FRAME_HEADER_BYTES,
  frameBytes,
  FrameSplitter,
  MAX_FRAME_BYTES,
} from "./framing.ts";
export {
  ClientClosedError,
  ClientError,
  ConnectionLostError,
  FrameError,
  type FrameErrorCode,
  ReceiveTimeoutError,
  RequestTimeoutError,
  SendQueueFullError,
} from "./errors.ts";
