/**
 * A {@link ClientTransport} over the standard `WebSocket` global (browsers,
 * Deno, Node ≥ 22), for Stage's `ws://` listeners
 * (`broker.ready("ws://0.0.0.0:8080/game?json", …)`).
 *
 * It presents the byte stream the client's framing expects: each message
 * received becomes one frame, and each frame written becomes one message. With
 * the `bson` codec a message is the whole frame (a BSON document, its length
 * included) in a binary message; with `json` the payload as a text message;
 * with `raw` the payload as a binary message: exactly what the listener sends
 * and expects, so a browser can also talk to it with a plain `WebSocket`.
 *
 * Flow control: `write` waits while more than `maxBufferedBytes` are buffered
 * in the socket (`bufferedAmount`). The WebSocket API cannot pause reading, so
 * received messages are queued here until read.
 *
 * @module
 */
import { FRAME_HEADER_BYTES } from "./framing.ts";
import type { CodecName } from "./codecs.ts";
import type { ClientConnection, ClientTransport } from "./transport.ts";

/** The part of a `WebSocket` this transport uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
}

/** A `WebSocket` constructor (the global one by default). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of {@link webSocketTransport}. */
export interface WebSocketTransportOptions {
  /** The listener's path, e.g. `"/game"` (default `"/"`). */
  path?: string;
  /**
   * The listener's codec (default `"bson"`): `json` sends text messages, `bson`
   * and `raw` binary ones. Give the same codec to `StageClient.connect`.
   */
  codec?: CodecName;
  /** Connect with `wss://` (TLS, e.g. through a terminating proxy). Default false. */
  secure?: boolean;
  /** Bytes buffered in the socket beyond which `write` waits (default 1 MiB). */
  maxBufferedBytes?: number;
  /** The `WebSocket` implementation (default `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/** Close codes that end a stream normally (read resolves `null`). */
const NORMAL_CLOSES = new Set([1000, 1001, 1005]);
const DRAIN_POLL_MS = 2;

/**
 * A transport that connects to `ws://host:port/path` through `WebSocket`.
 *
 * @example
 * ```ts ignore
 * import { StageClient, webSocketTransport } from "./mod.ts";
 * await using client = await StageClient.connect({
 *   host: "game.example", port: 8080, codec: "json",
 *   transport: webSocketTransport({ path: "/game", codec: "json" }),
 * });
 * ```
 *
 * @throws {TypeError} for a path not starting with `/`, an unknown codec, a bad
 *   `maxBufferedBytes`, or when no `WebSocket` is available
 */
export function webSocketTransport(options: WebSocketTransportOptions = {}): ClientTransport {
  const path = options.path ?? "/";
  if (!path.startsWith("/")) {
    throw new TypeError(`webSocketTransport: path "${path}" must start with "/"`);
  }
  const codec = options.codec ?? "bson";
  if (!["bson", "json", "raw"].includes(codec)) {
    throw new TypeError(
      `webSocketTransport: unknown codec "${codec}" (expected bson, json or raw)`,
    );
  }
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  if (!Number.isSafeInteger(maxBuffered) || maxBuffered < 0) {
    throw new TypeError(`webSocketTransport: maxBufferedBytes ${maxBuffered} is not a byte count`);
  }
  const Socket = options.WebSocket ??
    (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (Socket === undefined) {
    throw new TypeError(
      "webSocketTransport: this runtime has no WebSocket; pass options.WebSocket",
    );
  }
  const scheme = options.secure === true ? "wss" : "ws";
  return {
    connect(host, port) {
      const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${path}`;
      return new Promise((resolve, reject) => {
        let socket: WebSocketLike;
        try {
          socket = new Socket(url);
        } catch (error) {
          reject(new Error(`Cannot connect to ${url}: ${messageOf(error)}`, { cause: error }));
          return;
        }
        socket.binaryType = "arraybuffer";
        socket.onerror = () => {}; // the close event that follows carries the code
        socket.onclose = (event) => {
          reject(
            new Error(
              `Cannot connect to ${url}: closed with code ${event.code}${
                event.reason === "" ? "" : ` (${event.reason})`
              } before the WebSocket opened`,
            ),
          );
        };
        socket.onopen = () => {
          resolve(new WebSocketConnection(socket, url, codec, maxBuffered));
        };
      });
    },
  };
}

class WebSocketConnection implements ClientConnection {
  readonly #socket: WebSocketLike;
  readonly #url: string;
  readonly #codec: CodecName;
  readonly #maxBuffered: number;
  /** Received frames (header included) not yet read; the first is read from `#offset`. */
  #queue: Uint8Array[] = [];
  #offset = 0;
  #waiter: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  /** Bytes of a frame written in part, held until the rest comes. */
  #pending: Uint8Array | undefined;

  constructor(socket: WebSocketLike, url: string, codec: CodecName, maxBuffered: number) {
    this.#socket = socket;
    this.#url = url;
    this.#codec = codec;
    this.#maxBuffered = maxBuffered;
    socket.onmessage = (event) => this.#received(event.data);
    socket.onclose = (event) => {
      if (!NORMAL_CLOSES.has(event.code) && this.#error === undefined) {
        this.#error = new Error(
          `WebSocket ${url} closed with code ${event.code}${
            event.reason === "" ? "" : ` (${event.reason})`
          }`,
        );
      }
      this.#end();
    };
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#queue.length === 0) {
      if (this.#ended) {
        if (this.#error !== undefined) throw this.#error;
        return null;
      }
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    let n = 0;
    while (n < buffer.length && this.#queue.length > 0) {
      const frame = this.#queue[0]!;
      const take = Math.min(buffer.length - n, frame.length - this.#offset);
      buffer.set(frame.subarray(this.#offset, this.#offset + take), n);
      n += take;
      this.#offset += take;
      if (this.#offset === frame.length) {
        this.#queue.shift();
        this.#offset = 0;
      }
    }
    return n;
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.#ended) throw this.#error ?? new Error(`WebSocket ${this.#url} is closed`);
    if (this.#pending !== undefined) {
      const joined = new Uint8Array(this.#pending.length + bytes.length);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.length);
      this.#pending = undefined;
      await this.#writeFrames(joined);
    } else {
      await this.#writeFrames(bytes);
    }
    return bytes.length;
  }

  close(): void {
    if (this.#ended) return;
    this.#socket.close(1000);
    this.#end();
  }

  async #writeFrames(bytes: Uint8Array): Promise<void> {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    while (bytes.length - offset >= FRAME_HEADER_BYTES) {
      const length = view.getInt32(offset, true);
      if (length < FRAME_HEADER_BYTES) {
        throw new RangeError(`Cannot send a frame declaring ${length} bytes to ${this.#url}`);
      }
      if (bytes.length - offset < length) break;
      const frame = bytes.subarray(offset, offset + length);
      if (this.#codec === "json") {
        this.#socket.send(decoder.decode(frame.subarray(FRAME_HEADER_BYTES)));
      } else {
        // A copy: the socket may keep it past this call, and the caller reuses its buffer.
        this.#socket.send(this.#codec === "bson" ? frame.slice() : frame.slice(FRAME_HEADER_BYTES));
      }
      offset += length;
    }
    if (offset < bytes.length) this.#pending = bytes.slice(offset);
    while (!this.#ended && this.#socket.bufferedAmount > this.#maxBuffered) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  #received(data: unknown): void {
    let message: Uint8Array;
    if (typeof data === "string") message = encoder.encode(data);
    else if (data instanceof ArrayBuffer) message = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) {
      // A view may share memory the runtime reuses: keep a copy.
      message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    } else {
      this.#fail(`WebSocket ${this.#url} delivered a message of an unexpected type`);
      return;
    }
    let frame: Uint8Array;
    if (this.#codec === "bson") {
      if (message.length < FRAME_HEADER_BYTES) {
        this.#fail(
          `WebSocket ${this.#url} sent a ${message.length}-byte message, too short for a document`,
        );
        return;
      }
      frame = message; // owned: decoded or copied above
    } else {
      frame = new Uint8Array(message.length + FRAME_HEADER_BYTES);
      frame.set(message, FRAME_HEADER_BYTES);
    }
    // The real size, so the framing stays in step whatever the message claims.
    new DataView(frame.buffer).setInt32(0, frame.length, true);
    this.#queue.push(frame);
    this.#wake();
  }

  #fail(message: string): void {
    this.#error ??= new Error(message);
    this.#socket.close(1002);
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
