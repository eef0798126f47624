/**
 * A WebSocket connection (RFC 6455, after the opening handshake) presented as
 * the framed byte stream the rest of the network layer speaks, so `ws://`
 * listeners get every property of `tcp://` ones (read budgets, pending bounds,
 * the frame deadline, idle expiry, batched writes) from the same `Connection`.
 *
 * - Reading: each WebSocket message (text or binary, whole or fragmented) comes
 *   out as one frame, `[int32 LE total length][payload]`. With `framing:
 *   "document"` (bson) a message is the whole frame (a BSON document starts with
 *   its own length), with `"payload"` (json, raw) it is the payload alone. An
 *   unfragmented message streams through: its frame header comes out first and
 *   the payload as it arrives (so the `Connection`'s frame deadline and `IN`
 *   limit apply as for TCP); a fragmented one is assembled (bounded by `IN`)
 *   and comes out whole. A message over `IN` comes out as a header declaring its
 *   real size: the framer rejects it (`frame_too_large`) and the close code is 1009.
 * - Writing: the frames written become one WebSocket message each (text when
 *   `text`, else binary); a frame split across writes is held until complete.
 * - Control frames: ping is answered with pong; close is echoed, then the
 *   stream ends; protocol violations end the stream with an error and close 1002.
 * - Not reading the connection leaves bytes in the kernel: TCP backpressure, as
 *   for `tcp://`. Pings and pongs do not count as input for idle expiry.
 *
 * @module
 */
import type { Clock } from "../time/mod.ts";
import type { StreamConn } from "./transport.ts";
import { closePayload, encodeFrame, Opcode, WebSocketProtocolError } from "./_websocket_frames.ts";
import { WebSocketMessageReader } from "./_websocket_message_reader.ts";
import { WebSocketMessageWriter } from "./_websocket_message_writer.ts";

/** How long a closing connection waits for the peer's close frame before dropping TCP. */
const LINGER_MS = 2000;

/** Options of a {@link WebSocketConn}. */
export interface WebSocketConnOptions {
  /** `server`: incoming frames must be masked, outgoing are not; `client`: the reverse. */
  role: "server" | "client";
  /** Largest frame handed up, header included (the listener's `IN`). */
  maxIn: number;
  /** `document`: a message is a whole frame (bson); `payload`: the frame's payload (json, raw). */
  framing: "document" | "payload";
  /** Send text messages (json) rather than binary. */
  text: boolean;
  /**
   * Time allowed, while waiting on the peer, for a WebSocket frame header or a
   * fragmented message to complete; 0 = unbounded. (Unfragmented payloads are
   * timed by the `Connection`'s frame deadline.)
   */
  deadlineMs: number;
  clock: Clock;
  /** Bytes read past the handshake (the first frames, when the peer pipelined them). */
  leftover?: Uint8Array;
}

/**
 * See the module documentation. Obtain one with `acceptWebSocket` or
 * `connectWebSocket` (websocket_upgrade.ts), which perform the handshake.
 *
 * @example
 * ```ts ignore
 * const ws = new WebSocketConn(tcp, { role: "server", maxIn: 65536, framing: "payload",
 *   text: true, deadlineMs: 10_000, clock: systemClock });
 * const n = await ws.read(buffer); // frame bytes: [len LE][payload]
 * ```
 */
export class WebSocketConn implements StreamConn {
  readonly local: string;
  readonly remote: string;
  readonly #conn: StreamConn;
  readonly #options: WebSocketConnOptions;
  readonly #reader: WebSocketMessageReader;
  readonly #writer: WebSocketMessageWriter;
  #writeChain: Promise<void> = Promise.resolve();
  /** The read in flight (the linger waits for it before reading on). */
  #busy: Promise<unknown> | undefined;
  #closed = false;
  #closeSent = false;
  /** A read failed: the stream can no longer be parsed. */
  #broken = false;
  #tcpClosed = false;
  #done!: () => void;
  /** Resolves once the underlying TCP connection is closed (after the closing handshake). */
  readonly finished: Promise<void>;

  constructor(conn: StreamConn, options: WebSocketConnOptions) {
    this.#conn = conn;
    this.#options = options;
    this.local = conn.local;
    this.remote = conn.remote;
    this.#reader = new WebSocketMessageReader(conn, options, {
      ping: async (payload) => {
        if (!this.#closeSent) await this.#send(this.#frame(Opcode.Pong, payload));
      },
      close: async (payload) => {
        if (this.#closeSent) return;
        this.#closeSent = true;
        await this.#send(this.#frame(Opcode.Close, payload));
      },
      abort: () => this.#closeTcp(),
      isClosed: () => this.#closed || this.#tcpClosed,
    });
    this.#writer = new WebSocketMessageWriter({
      document: options.framing === "document",
      masked: options.role === "client",
      text: options.text,
    });
    this.finished = new Promise((resolve) => this.#done = resolve);
  }

  /** The close code this side sends (or sent) when it closes: 1000, 1002, 1007 or 1009. */
  get closeCode(): number {
    return this.#reader.closeCode;
  }

  /** Reads frame bytes; `null` once the peer closed (close frame or end of stream). */
  read(buffer: Uint8Array): Promise<number | null> {
    if (this.#closed || this.#reader.ended) return Promise.resolve(null);
    const run = this.#reader.next(buffer, false).catch((error) => {
      if (error instanceof WebSocketProtocolError) this.#reader.setClose(error.code, error.message);
      this.#broken = true;
      throw error;
    });
    this.#busy = run;
    return run;
  }

  /** Writes frames; each complete frame becomes one WebSocket message. */
  async write(bytes: Uint8Array): Promise<number> {
    // After a close frame nothing more may be sent; like TCP after the peer's
    // FIN, the bytes are taken and go nowhere (the read side reports the end).
    if (this.#closed || this.#closeSent) return bytes.length;
    const out = this.#writer.encode(bytes);
    if (out.length > 0) await this.#send(out);
    return bytes.length;
  }

  /** Sends a close frame (unless one was exchanged already), lingers briefly, closes TCP. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#tcpClosed) return;
    if (this.#closeSent || this.#reader.peerEnded) {
      this.#closeTcp();
      return;
    }
    this.#closeSent = true;
    const reader = this.#reader;
    const frame = this.#frame(Opcode.Close, closePayload(reader.closeCode, reader.closeReason));
    this.#send(frame).then(() => this.#linger(), () => this.#closeTcp());
  }

  #frame(opcode: number, payload: Uint8Array): Uint8Array {
    if (this.#options.role === "server") return encodeFrame(opcode, payload);
    return encodeFrame(opcode, payload, { mask: crypto.getRandomValues(new Uint8Array(4)) });
  }

  /** Writes `bytes` after everything sent before. */
  #send(bytes: Uint8Array): Promise<void> {
    const run = this.#writeChain.then(async () => {
      for (let written = 0; written < bytes.length;) {
        written += await this.#conn.write(written === 0 ? bytes : bytes.subarray(written));
      }
    });
    this.#writeChain = run.catch(() => {});
    return run;
  }

  /** After our close frame: read (and discard) until the peer's close frame or end of stream. */
  async #linger(): Promise<void> {
    const timer = this.#options.clock.setTimeout(() => this.#closeTcp(), LINGER_MS);
    try {
      await this.#busy?.catch(() => {});
      const scratch = new Uint8Array(16 * 1024);
      if (this.#broken) {
        while (!this.#tcpClosed && await this.#conn.read(scratch) !== null) { /* drain */ }
      } else {
        while (!this.#tcpClosed && await this.#reader.next(scratch, true) !== null) { /* drain */ }
      }
    } catch {
      // A broken peer: nothing more to wait for.
    } finally {
      timer.cancel();
      this.#closeTcp();
    }
  }

  #closeTcp(): void {
    if (this.#tcpClosed) return;
    this.#tcpClosed = true;
    this.#conn.close();
    this.#done();
  }
}
