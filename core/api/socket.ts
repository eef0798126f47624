/**
 * The socket handle scripts receive: `id`, `local`, `remote`, `commit`, `close`,
 * `expire`, `commitMs`, `crypto` and any user-defined fields.
 *
 * @module
 */
import { serialize } from "node:v8";
import { type CloseReasonCode, InjectMode, SocketOption, ToMain } from "../pool/wire.ts";
import { type Codec, encodeFrameParts } from "./payload_codec.ts";
import type { PlatformPort } from "./platform_port.ts";
import {
  CRYPTO_OVERHEAD,
  SocketCipher,
  type SocketCryptoMode,
  type SocketCryptoOptions,
} from "./socket_crypto.ts";

/** A socket's receive function: called once per frame, in arrival order. */
export type ReceiveFunction = (socket: Socket, data: unknown) => unknown;

/** How a socket encodes what it commits. */
export interface SocketFormat {
  codec: Codec;
  maxOut: number;
  /** The URL scheme (`tcp`, `ws`, …); `socket.crypto` is for `tcp` sockets. */
  protocol?: string;
}

/** Called when a commit could not be encrypted (the socket is then closed). */
export type SocketFailure = (socket: Socket, error: unknown) => void;

const detailEncoder = new TextEncoder();

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
  #cipher: SocketCipher | undefined;
  /** Output still being encrypted: later commits and the close queue behind it. */
  #tail: Promise<void> | undefined;
  #failed: SocketFailure | undefined;

  constructor(
    id: number,
    local: string,
    remote: string,
    port: PlatformPort,
    format: SocketFormat | undefined,
    moved = false,
    failed?: SocketFailure,
  ) {
    this.id = id;
    this.moved = moved;
    this.local = local;
    this.remote = remote;
    this.receive = undefined;
    this.#port = port;
    this.#format = format;
    this.#failed = failed;
  }

  /**
   * Queues a value to be written as one frame on the next flush.
   *
   * @throws TypeError when the value does not fit the socket's codec
   * @throws RangeError when the frame exceeds the socket's `OUT` limit
   */
  commit(value: unknown): void {
    if (this.#closed) return;
    const format = this.#format;
    if (format === undefined) {
      // A socket handled by another worker: its home worker encodes (and encrypts) the value.
      this.#port.send(ToMain.Inject, this.id, InjectMode.Commit, serialize(value));
      return;
    }
    const cipher = this.#cipher;
    if (cipher === undefined) {
      const [head, body] = encodeFrameParts(value, format.codec, format.maxOut);
      if (this.#tail === undefined) {
        this.#port.send(ToMain.Commit, this.id, 0, head, body);
        return;
      }
      // Behind frames still being encrypted; a copy, since the head may be shared scratch.
      const frame = joinParts(head, body);
      this.#after(() => this.#port.send(ToMain.Commit, this.id, 0, frame));
      return;
    }
    const plain = joinParts(...encodeFrameParts(value, format.codec, Infinity));
    if (plain.length + CRYPTO_OVERHEAD > format.maxOut) {
      throw new RangeError(
        `Encrypted frame of ${
          plain.length + CRYPTO_OVERHEAD
        } bytes (${plain.length} + ${CRYPTO_OVERHEAD} of encryption) exceeds the socket's OUT limit of ${format.maxOut}`,
      );
    }
    this.#after(async () => {
      const [head, body] = await cipher.seal(plain);
      this.#port.send(ToMain.Commit, this.id, 0, head, body);
    });
  }

  /** Closes the socket once everything committed before has been written. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#tail === undefined) this.#port.send(ToMain.Close, this.id, 0);
    else this.#after(() => this.#port.send(ToMain.Close, this.id, 0));
  }

  /**
   * The socket's encryption: `{ key, mode }` (a copy of the key), or undefined.
   * Set `{ key: Uint8Array(16 | 24 | 32), mode?: "aes-gcm" }` to encrypt every frame
   * committed from now on and decrypt every frame handled after the current
   * handler; `null` (or undefined) turns it off. The key is imported in the
   * background: frames wait for it, in order. See {@link SocketCipher} for the layout.
   *
   * @throws TypeError for bad options, on a worker that is not the socket's home, or on a non-tcp socket
   * @throws RangeError when the key is not 16, 24 or 32 bytes
   */
  get crypto(): { key: Uint8Array; mode: SocketCryptoMode } | undefined {
    return this.#cipher?.options;
  }

  set crypto(options: SocketCryptoOptions | null | undefined) {
    const what = `socket.crypto of socket ${this.id}`;
    if (this.#format === undefined) {
      throw new TypeError(
        `${what}: set it on the socket's home worker (in its handlers, or through broker.submit)`,
      );
    }
    const protocol = this.#format.protocol ?? "tcp";
    if (protocol !== "tcp") {
      throw new TypeError(`${what}: only tcp:// sockets are encrypted; this one is ${protocol}://`);
    }
    this.#cipher = options === null || options === undefined
      ? undefined
      : SocketCipher.from(options, what);
  }

  /**
   * Sets {@link crypto} and resolves once the key is imported (so a failure
   * surfaces here rather than on the first frame).
   *
   * @throws TypeError, RangeError (rejects) as for `socket.crypto`
   */
  async setCrypto(options: SocketCryptoOptions | null): Promise<void> {
    this.crypto = options;
    await this.#cipher?.ready();
  }

  /** The socket's cipher (for the broker, which decrypts its frames). */
  get cipher(): SocketCipher | undefined {
    return this.#cipher;
  }

  /** Closes the socket at once with a reason the worker found (`decrypt_failed`). */
  abort(reason: CloseReasonCode, detail: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.send(ToMain.Close, this.id, reason, detailEncoder.encode(detail));
  }

  /** Runs `step` once the output queued before it went out (encryption is asynchronous). */
  #after(step: () => void | Promise<void>): void {
    const tail = (this.#tail ?? Promise.resolve()).then(step).catch((error) => {
      this.#failed?.(this, error);
      this.close();
    });
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
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

  /** Restores options a moved socket had (the main thread already applies them). */
  restoreOptions(expire: number, commitMs: number): void {
    this.#expire = expire;
    this.#commitMs = commitMs;
  }

  /** Marks the socket closed after the main thread reported the end of the connection. */
  markClosed(): void {
    this.#closed = true;
  }

  #option(option: number, value: number): void {
    const body = new Uint8Array(8);
    new DataView(body.buffer).setFloat64(0, value, true);
    this.#port.send(ToMain.SocketOption, this.id, option, body);
  }
}

function joinParts(head: Uint8Array, body: Uint8Array | undefined): Uint8Array {
  const frame = new Uint8Array(head.length + (body?.length ?? 0));
  frame.set(head);
  if (body !== undefined) frame.set(body, head.length);
  return frame;
}

function checkMs(name: string, ms: number): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new RangeError(`${name} must be a non-negative number of milliseconds; got ${ms}`);
  }
  return ms;
}
