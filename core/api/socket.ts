/**
 * The socket handle scripts receive: `id`, `local`, `remote`, `commit`, `close`,
 * `expire`, `commitMs` and any user-defined fields.
 *
 * @module
 */
import { serialize } from "node:v8";
import { SocketOption, ToMain } from "../pool/wire.ts";
import { type Codec, encodeFrameParts } from "./payload_codec.ts";
import type { PlatformPort } from "./platform_port.ts";

/** A socket's receive function: called once per frame, in arrival order. */
export type ReceiveFunction = (socket: Socket, data: unknown) => unknown;

/** How a socket encodes what it commits. */
export interface SocketFormat {
  codec: Codec;
  maxOut: number;
}

/**
 * A connection as a script sees it. Frames of one socket are handled in arrival
 * order, never concurrently. User-defined fields are plain properties.
 */
export class Socket {
  /** The socket id (unique within the process while open). */
  readonly id: number;
  /** Local address, `"ip:port"` or `"[ip6]:port"`. */
  readonly local: string;
  /** Remote address, `"ip:port"` or `"[ip6]:port"`. */
  readonly remote: string;
  /** The receive function (set by `onAccept`'s return value or by the script). */
  receive: ReceiveFunction | undefined;
  /**
   * True when the socket moved here from a worker that was stuck or lost:
   * `onAccept` runs again on the new worker with the user fields last synced.
   */
  readonly moved: boolean;
  #port: PlatformPort;
  #format: SocketFormat | undefined;
  #expire = 0;
  #commitMs = 0;
  #closed = false;

  constructor(
    id: number,
    local: string,
    remote: string,
    port: PlatformPort,
    format: SocketFormat | undefined,
    moved = false,
  ) {
    this.id = id;
    this.moved = moved;
    this.local = local;
    this.remote = remote;
    this.receive = undefined;
    this.#port = port;
    this.#format = format;
  }

  /**
   * Queues a value to be written as one frame on the next flush.
   *
   * @throws TypeError when the value does not fit the socket's codec
   * @throws RangeError when the frame exceeds the socket's `OUT` limit
   */
  commit(value: unknown): void {
    if (this.#closed) return;
    if (this.#format === undefined) {
      // A socket handled by another worker: its home worker encodes the value.
      this.#port.send(ToMain.Inject, this.id, 1, serialize(value));
      return;
    }
    const [head, body] = encodeFrameParts(value, this.#format.codec, this.#format.maxOut);
    this.#port.send(ToMain.Commit, this.id, 0, head, body);
  }

  /** Closes the socket once everything committed before has been written. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.send(ToMain.Close, this.id, 0);
  }

  /** Whether `close()` was called or the connection ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Milliseconds without input before the socket is closed as a zombie (0 = never). */
  get expire(): number {
    return this.#expire;
  }

  set expire(ms: number) {
    this.#expire = checkMs("socket.expire", ms);
    this.#option(SocketOption.Expire, this.#expire);
  }

  /** Flush cadence in milliseconds (0 = flush once per scheduling turn). */
  get commitMs(): number {
    return this.#commitMs;
  }

  set commitMs(ms: number) {
    this.#commitMs = checkMs("socket.commitMs", ms);
    this.#option(SocketOption.CommitMs, this.#commitMs);
  }

  /** Marks the socket closed after the main thread reported the end of the connection. */
  /** Restores options a moved socket had (the main thread already applies them). */
  restoreOptions(expire: number, commitMs: number): void {
    this.#expire = expire;
    this.#commitMs = commitMs;
  }

  markClosed(): void {
    this.#closed = true;
  }

  #option(option: number, value: number): void {
    const body = new Uint8Array(8);
    new DataView(body.buffer).setFloat64(0, value, true);
    this.#port.send(ToMain.SocketOption, this.id, option, body);
  }
}

function checkMs(name: string, ms: number): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${name} must be a non-negative number of milliseconds; got ${ms}`);
  }
  return ms;
}
