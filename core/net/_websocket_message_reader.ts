/**
 * The read half of a WebSocket connection: a state machine over the TCP byte
 * stream that hands each WebSocket message up as one Stage frame (see
 * `websocket_conn.ts`), answers control frames through its hooks, and bounds
 * how long an incomplete frame header or fragmented message may wait.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";
import { MAX_FRAME_LENGTH } from "./framing.ts";
import type { StreamConn } from "./transport.ts";
import {
  applyMask,
  CloseCode,
  type FrameHeader,
  Opcode,
  parseClosePayload,
  parseFrameHeader,
  WebSocketProtocolError,
} from "./_websocket_frames.ts";

/** The raw buffer starts small (idle connections are cheap) and grows while reads fill it. */
const INITIAL_RAW_BYTES = 256;
const MAX_RAW_BYTES = 16 * 1024;

/** Options of a {@link WebSocketMessageReader}. */
export interface MessageReaderOptions {
  /** `server`: frames must be masked; `client`: they must not be. */
  role: "server" | "client";
  /** Largest frame handed up, header included. */
  maxIn: number;
  /** `document`: a message is a whole frame (bson); `payload`: its payload (json, raw). */
  framing: "document" | "payload";
  /** Time an incomplete header or fragmented message may wait on the peer; 0 = unbounded. */
  deadlineMs: number;
  clock: Clock;
  /** Bytes already read from the stream (after the handshake). */
  leftover?: Uint8Array;
}

/** What the reader asks of its connection. */
export interface MessageReaderHooks {
  /** Answers a ping (the read waits until the pong is sent). */
  ping(payload: Uint8Array): Promise<void>;
  /** The peer's close frame arrived; `payload` is what to echo. */
  close(payload: Uint8Array): Promise<void>;
  /** A deadline passed: drop the TCP connection (the pending read then fails). */
  abort(): void;
  /** Whether our side has closed. */
  isClosed(): boolean;
}

interface Streaming {
  remaining: number;
  mask: Uint8Array | undefined;
  offset: number;
}

interface Chunk {
  bytes: Uint8Array;
  filled: number;
  mask: Uint8Array | undefined;
  fin: boolean;
}

/** See the module documentation. */
export class WebSocketMessageReader {
  readonly #conn: StreamConn;
  readonly #options: MessageReaderOptions;
  readonly #hooks: MessageReaderHooks;
  #raw: Uint8Array;
  #rawStart = 0;
  #rawEnd = 0;
  #emit: Uint8Array | undefined;
  #emitAt = 0;
  #streaming: Streaming | undefined;
  #chunk: Chunk | undefined;
  #message: { parts: Uint8Array[]; size: number; oversized: boolean } | undefined;
  /** Time spent waiting on the peer for the unit (header / fragmented message) now incomplete. */
  #unitWaited = 0;
  /** The last fill filled the raw buffer. */
  #filled = false;
  #closeReceived = false;
  #peerEnded = false;
  #closeCode: number = CloseCode.Normal;
  #closeReason = "";

  constructor(conn: StreamConn, options: MessageReaderOptions, hooks: MessageReaderHooks) {
    this.#conn = conn;
    this.#options = options;
    this.#hooks = hooks;
    const leftover = options.leftover;
    this.#raw = leftover !== undefined && leftover.length > INITIAL_RAW_BYTES
      ? leftover.slice()
      : new Uint8Array(INITIAL_RAW_BYTES);
    if (leftover !== undefined && leftover.length <= INITIAL_RAW_BYTES) this.#raw.set(leftover);
    this.#rawEnd = leftover?.length ?? 0;
  }

  /** Whether the stream ended: the peer's close frame came, or the end of the TCP stream. */
  get ended(): boolean {
    return this.#closeReceived || this.#peerEnded;
  }

  /** Whether the TCP stream ended without a close frame. */
  get peerEnded(): boolean {
    return this.#peerEnded;
  }

  /** The close code our side should send: 1000, or what the first problem called for. */
  get closeCode(): number {
    return this.#closeCode;
  }

  /** The reason sent with {@link closeCode}. */
  get closeReason(): string {
    return this.#closeReason;
  }

  /** Records the close code of the first problem (later ones do not replace it). */
  setClose(code: number, reason: string): void {
    if (this.#closeCode !== CloseCode.Normal) return;
    this.#closeCode = code;
    this.#closeReason = reason;
  }

  /**
   * Reads frame bytes into `buffer`: as many as are available without waiting,
   * or waits for the first; `null` at the end (the peer's close frame or end of
   * stream, or our side closed unless `discarding`: the linger reads on).
   *
   * @throws {WebSocketProtocolError} when the peer breaks the protocol
   * @throws {Error} when a deadline passed or the TCP read failed
   */
  async next(buffer: Uint8Array, discarding: boolean): Promise<number | null> {
    let produced = 0;
    for (;;) {
      if ((this.#hooks.isClosed() && !discarding) || this.ended) {
        return produced > 0 ? produced : null;
      }
      if (produced === buffer.length) return produced;
      const emit = this.#emit;
      if (emit !== undefined) {
        const n = Math.min(buffer.length - produced, emit.length - this.#emitAt);
        buffer.set(emit.subarray(this.#emitAt, this.#emitAt + n), produced);
        this.#emitAt += n;
        produced += n;
        if (this.#emitAt === emit.length) this.#emit = undefined;
        continue;
      }
      const streaming = this.#streaming;
      if (streaming !== undefined) {
        const room = buffer.subarray(
          produced,
          produced + Math.min(
            buffer.length - produced,
            streaming.remaining,
          ),
        );
        let n = this.#takeRaw(room);
        if (n === 0) {
          if (produced > 0) return produced;
          const got = await this.#readRaw(room, false);
          if (got === null) continue;
          n = got;
        }
        if (streaming.mask !== undefined) {
          applyMask(room.subarray(0, n), streaming.mask, streaming.offset);
        }
        streaming.offset += n;
        streaming.remaining -= n;
        if (streaming.remaining === 0) this.#streaming = undefined;
        produced += n;
        continue;
      }
      const chunk = this.#chunk;
      if (chunk !== undefined) {
        if (chunk.filled < chunk.bytes.length) {
          const room = chunk.bytes.subarray(chunk.filled);
          let n = this.#takeRaw(room);
          if (n === 0) {
            if (produced > 0) return produced;
            const got = await this.#readRaw(room, !discarding);
            if (got === null) continue;
            n = got;
          }
          chunk.filled += n;
          continue;
        }
        if (chunk.mask !== undefined) applyMask(chunk.bytes, chunk.mask, 0);
        this.#chunk = undefined;
        this.#addFragment(chunk.bytes, chunk.fin);
        continue;
      }
      const available = this.#rawEnd - this.#rawStart;
      const header = parseFrameHeader(this.#raw, this.#rawStart, this.#rawEnd);
      const partial = available > 0 || this.#message !== undefined;
      if (header === undefined) {
        if (produced > 0) return produced;
        await this.#fill(partial && !discarding);
        continue;
      }
      this.#checkMask(header);
      const need = header.headerLength +
        (header.opcode >= 0x8
          ? header.length
          : header.fin && this.#message === undefined && this.#options.framing === "document"
          ? Math.min(4, header.length)
          : 0);
      if (available < need) {
        if (produced > 0) return produced;
        await this.#fill(!discarding);
        continue;
      }
      if (header.opcode >= 0x8) {
        if (header.opcode !== Opcode.Pong && produced > 0) return produced;
        await this.#control(header);
        if (this.#message === undefined) this.#unitWaited = 0;
        continue;
      }
      this.#data(header, need);
    }
  }

  #checkMask(header: FrameHeader): void {
    const server = this.#options.role === "server";
    if (server === (header.mask !== undefined)) return;
    throw new WebSocketProtocolError(
      CloseCode.ProtocolError,
      server ? "WebSocket client frame is not masked" : "WebSocket server frame is masked",
    );
  }

  async #control(header: FrameHeader): Promise<void> {
    const start = this.#rawStart + header.headerLength;
    const payload = this.#raw.slice(start, start + header.length);
    this.#rawStart = start + header.length;
    if (header.mask !== undefined) applyMask(payload, header.mask, 0);
    if (header.opcode === Opcode.Ping) {
      await this.#hooks.ping(payload);
    } else if (header.opcode === Opcode.Close) {
      const { code } = parseClosePayload(payload);
      this.#closeReceived = true;
      await this.#hooks.close(code === CloseCode.NoStatus ? payload : payload.subarray(0, 2));
    }
  }

  #data(header: FrameHeader, need: number): void {
    const continuation = header.opcode === Opcode.Continuation;
    if (continuation !== (this.#message !== undefined)) {
      throw new WebSocketProtocolError(
        CloseCode.ProtocolError,
        continuation
          ? "WebSocket continuation frame without a message in progress"
          : "WebSocket data frame inside a fragmented message",
      );
    }
    const framing = this.#options.framing;
    const mask = header.mask;
    if (header.fin && this.#message === undefined) {
      const skip = need - header.headerLength;
      this.#rawStart += need;
      this.#emitHeader(framing === "document" ? header.length : header.length + 4);
      const remaining = header.length - skip;
      this.#streaming = remaining > 0 ? { remaining, mask, offset: skip } : undefined;
      this.#unitWaited = 0;
      return;
    }
    this.#rawStart += header.headerLength;
    const message = this.#message ??= { parts: [], size: 0, oversized: false };
    const total = message.size + header.length + (framing === "document" ? 0 : 4);
    if (message.oversized || total > this.#options.maxIn) {
      // Over IN: the header declaring it makes the Connection close (frame_too_large).
      if (!message.oversized) this.#emitHeader(total);
      message.oversized = true;
      if (header.fin) this.#message = undefined;
      this.#streaming = header.length > 0
        ? { remaining: header.length, mask, offset: 0 }
        : undefined;
      return;
    }
    this.#chunk = { bytes: new Uint8Array(header.length), filled: 0, mask, fin: header.fin };
  }

  #addFragment(bytes: Uint8Array, fin: boolean): void {
    const message = this.#message!;
    message.parts.push(bytes);
    message.size += bytes.length;
    if (!fin) return;
    this.#message = undefined;
    this.#unitWaited = 0;
    const document = this.#options.framing === "document";
    const total = document ? message.size : message.size + 4;
    this.#emitHeader(total);
    if (document && total < 4) return;
    const out = new Uint8Array(Math.max(total, 4));
    out.set(this.#emit!, 0);
    let offset = 4;
    let skip = document ? 4 : 0;
    for (const part of message.parts) {
      const from = Math.min(skip, part.length);
      skip -= from;
      out.set(part.subarray(from), offset);
      offset += part.length - from;
    }
    this.#emit = out;
  }

  /** Queues the frame header declaring `total` bytes (the framer judges sizes out of bounds). */
  #emitHeader(total: number): void {
    const maxIn = this.#options.maxIn;
    if (total > maxIn) {
      if (total > MAX_FRAME_LENGTH && maxIn >= MAX_FRAME_LENGTH) {
        throw new WebSocketProtocolError(
          CloseCode.TooBig,
          `WebSocket message of ${total} bytes exceeds the limit of ${maxIn}`,
        );
      }
      this.setClose(CloseCode.TooBig, `message of ${total} bytes exceeds the limit of ${maxIn}`);
    } else if (total < 4) {
      this.setClose(CloseCode.InvalidPayload, `a BSON document of ${total} bytes`);
    }
    const header = new Uint8Array(4);
    new DataView(header.buffer).setInt32(0, Math.min(total, MAX_FRAME_LENGTH), true);
    this.#emit = header;
    this.#emitAt = 0;
  }

  #takeRaw(into: Uint8Array): number {
    const n = Math.min(into.length, this.#rawEnd - this.#rawStart);
    if (n === 0) return 0;
    into.set(this.#raw.subarray(this.#rawStart, this.#rawStart + n));
    this.#rawStart += n;
    return n;
  }

  /** Reads more raw bytes after those buffered (compacting or growing the buffer). */
  async #fill(partial: boolean): Promise<void> {
    const kept = this.#rawEnd - this.#rawStart;
    if (this.#rawStart > 0) {
      this.#raw.copyWithin(0, this.#rawStart, this.#rawEnd);
      this.#rawStart = 0;
      this.#rawEnd = kept;
    }
    // Full of an incomplete header (only possible after a large leftover), or the
    // last read filled it: grow (a stream of small messages then takes fewer reads).
    if (this.#rawEnd === this.#raw.length || (this.#filled && this.#raw.length < MAX_RAW_BYTES)) {
      const grown = new Uint8Array(Math.max(this.#raw.length * 4, kept + 1));
      grown.set(this.#raw.subarray(0, kept));
      this.#raw = grown;
    }
    const room = this.#raw.subarray(this.#rawEnd);
    const got = await this.#readRaw(room, partial);
    this.#filled = got === room.length;
    if (got !== null) this.#rawEnd += got;
  }

  /** One read of the TCP stream; `partial`: the deadline for an incomplete unit runs meanwhile. */
  async #readRaw(into: Uint8Array, partial: boolean): Promise<number | null> {
    const { clock, deadlineMs } = this.#options;
    let timer: TimerHandle | undefined;
    let expired: string | undefined;
    const started = clock.now();
    if (partial && deadlineMs > 0) {
      timer = clock.setTimeout(() => {
        expired = this.#message === undefined
          ? `WebSocket frame header not complete within ${deadlineMs} ms`
          : `WebSocket fragmented message not complete within ${deadlineMs} ms`;
        this.#hooks.abort();
      }, Math.max(0, deadlineMs - this.#unitWaited));
    }
    try {
      const got = await this.#conn.read(into);
      if (expired !== undefined) throw new Error(expired);
      if (got === null) this.#peerEnded = true;
      return got;
    } catch (error) {
      if (expired !== undefined) throw new Error(expired);
      if (this.#hooks.isClosed()) {
        this.#peerEnded = true;
        return null;
      }
      throw error;
    } finally {
      timer?.cancel();
      if (partial) this.#unitWaited += clock.now() - started;
    }
  }
}
