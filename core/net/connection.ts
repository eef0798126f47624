/**
 * One framed TCP connection on the main thread: its read loop (frame
 * boundaries only, never payload decoding), a bound on frames awaiting their
 * handlers, batched writes, idle expiry, the frame deadline and an orderly close.
 *
 * Abnormal peers and what catches them:
 * - a peer that opens a frame and then trickles or stalls (slowloris): the
 *   frame deadline ({@link ConnectionOptions.frameDeadlineMs}) closes it with
 *   `frame_deadline`;
 * - a peer that stays connected and silent: idle expiry ({@link Connection.expireMs});
 * - a half-open peer (its host vanished without a FIN or RST): idle expiry
 *   when set, and TCP keepalive, which the transport enables on every socket.
 *   Deno's `TcpConn.setKeepAlive` takes no interval, so the kernel's defaults
 *   apply (on Linux `net.ipv4.tcp_keepalive_time`, 2 h, then probes): keepalive
 *   alone reclaims such sockets only after hours; idle expiry is the prompt defence;
 * - a peer that does not read its replies: the output bound closes it as `slow_reader`.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { CloseReason, type CloseReasonCode } from "../pool/wire.ts";
import type { Clock, TimerHandle } from "../time/mod.ts";
import { FrameDeadline } from "./_frame_deadline.ts";
import { FrameDecoder, FrameError } from "./framing.ts";
import type { StreamConn } from "./transport.ts";
import type { FlowGate } from "./flow_gate.ts";

/** Read buffer size of a new connection (it grows while reads fill it). */
const INITIAL_READ_BYTES = 256;

/** Scratch for the header of the frame being reported (used synchronously, by one reader at a time). */
const frameHeader = new Uint8Array(4);
const frameHeaderView = new DataView(frameHeader.buffer);

/** About how many frames one read of one socket may bring in (its budget per round). */
const FRAMES_PER_READ = 64;

/** What a {@link Connection} reports. */
export interface ConnectionEvents {
  /**
   * A complete frame arrived: `header` (4 bytes) and `payload` are views valid only
   * during the call.
   */
  frame(connection: Connection, header: Uint8Array, payload: Uint8Array): void;
  /** The connection ended (exactly once). */
  closed(connection: Connection, reason: CloseReasonCode, detail: string): void;
}

/** Limits and dependencies of a {@link Connection}. */
export interface ConnectionOptions {
  /** Largest incoming frame, header included. */
  maxIn: number;
  /** Bytes of committed output allowed to wait for a slow reader before closing. */
  maxQueuedOut: number;
  /** Frames allowed to wait for their handlers before reading pauses. */
  maxPendingFrames: number;
  /** Size of the read buffer. */
  readBufferBytes: number;
  /** Process-wide input gate and read budget (the `#threads` bound, overload). */
  gate?: FlowGate;
  /**
   * Once a frame's first byte arrived, the whole frame must arrive within this
   * many ms or the connection closes with `frame_deadline`; 0 or absent = no deadline.
   * Time spent with reading paused (handlers behind, our side's doing) does not count.
   */
  frameDeadlineMs?: number;
  clock: Clock;
  log: Logger;
}

/** A framed connection; see the module doc. */
export class Connection {
  readonly id: number;
  /** The URL of the listener (or join) this connection belongs to. */
  readonly url: string;
  readonly local: string;
  readonly remote: string;
  #conn: StreamConn;
  #events: ConnectionEvents;
  #options: ConnectionOptions;
  #decoder: FrameDecoder;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #writing = false;
  #closeAfterFlush = false;
  #ended = false;
  #pending = 0;
  #framesIn = 0;
  #resume: (() => void) | undefined;
  #lastInput: number;
  #expireMs = 0;
  #expireTimer: TimerHandle | undefined;
  #commitMs = 0;
  #commitTimer: TimerHandle | undefined;
  #deadline: FrameDeadline | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  /** The socket's user fields as last synced by its worker (v8-serialized), for moving it. */
  fields: Uint8Array | undefined;

  constructor(
    id: number,
    url: string,
    conn: StreamConn,
    events: ConnectionEvents,
    options: ConnectionOptions,
  ) {
    this.id = id;
    this.url = url;
    this.local = conn.local;
    this.remote = conn.remote;
    this.#conn = conn;
    this.#events = events;
    this.#options = options;
    this.#decoder = new FrameDecoder(options.maxIn);
    const deadlineMs = options.frameDeadlineMs ?? 0;
    if (deadlineMs > 0) {
      this.#deadline = new FrameDeadline(
        options.clock,
        deadlineMs,
        this.#decoder,
        (detail) => this.#end(CloseReason.FrameDeadline, detail),
      );
    }
    this.#lastInput = options.clock.now();
  }

  /** Starts the read loop. */
  start(): void {
    this.#readLoop().catch((error) => {
      this.#end(CloseReason.ReadError, error instanceof Error ? error.message : String(error));
    });
  }

  /** Whether the connection has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Frames dispatched and not yet finished by their handlers. */
  get pendingFrames(): number {
    return this.#pending;
  }

  /** Bytes committed and not yet written. */
  get queuedOutBytes(): number {
    return this.#outBytes;
  }

  /** Totals for metrics. */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** A handler finished one of this connection's frames; reading resumes below the bound. */
  frameDone(): void {
    if (this.#pending > 0) this.#pending--;
    if (this.#resume !== undefined && this.#pending < this.#options.maxPendingFrames) {
      const resume = this.#resume;
      this.#resume = undefined;
      resume();
    }
  }

  /** Idle timeout in ms (0 = none). */
  set expireMs(ms: number) {
    this.#expireMs = ms;
    this.#expireTimer?.cancel();
    this.#expireTimer = undefined;
    if (ms > 0 && !this.#ended) this.#armExpiry(ms);
  }

  get expireMs(): number {
    return this.#expireMs;
  }

  /** Flush cadence in ms (0 = once per scheduling turn). */
  set commitMs(ms: number) {
    this.#commitMs = ms;
  }

  get commitMs(): number {
    return this.#commitMs;
  }

  /**
   * Queues a frame (in one or two parts) for writing. The caller flushes at the
   * end of its turn ({@link flush}); a reader that lets more than `maxQueuedOut`
   * bytes pile up is closed.
   */
  queue(head: Uint8Array, body?: Uint8Array): void {
    if (this.#ended || this.#closeAfterFlush) return;
    this.#out.push(head);
    this.#outBytes += head.length;
    if (body !== undefined && body.length > 0) {
      this.#out.push(body);
      this.#outBytes += body.length;
    }
    if (this.#outBytes > this.#options.maxQueuedOut) {
      this.close(
        CloseReason.SlowReader,
        `${this.#outBytes} bytes of output queued, over the limit of ${this.#options.maxQueuedOut}`,
      );
    }
  }

  /** Writes what is queued, now or on the connection's `commitMs` cadence. */
  flush(): void {
    if (this.#ended || this.#out.length === 0 || this.#writing) return;
    if (this.#commitMs > 0) {
      this.#commitTimer ??= this.#options.clock.setTimeout(() => {
        this.#commitTimer = undefined;
        this.#startWriting();
      }, this.#commitMs);
      return;
    }
    this.#startWriting();
  }

  /** Closes once everything queued so far is written (a script's `socket.close()`). */
  closeAfterFlush(): void {
    if (this.#ended) return;
    this.#closeAfterFlush = true;
    if (!this.#writing) {
      if (this.#out.length > 0) this.#startWriting();
      else this.close(CloseReason.Script, "");
    }
  }

  /** Closes now, discarding unwritten output. */
  close(reason: CloseReasonCode, detail: string): void {
    this.#end(reason, detail);
  }

  /** Resolves once all queued output is written (or the connection ended). */
  async drained(): Promise<void> {
    while (!this.#ended && (this.#writing || this.#out.length > 0)) {
      if (!this.#writing) this.#startWriting();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  async #readLoop(): Promise<void> {
    // Start small and grow while reads fill the buffer: an idle connection then
    // costs 256 bytes of buffer instead of the whole read budget (C10K).
    let buffer = new Uint8Array(Math.min(INITIAL_READ_BYTES, this.#options.readBufferBytes));
    let completed = 0;
    const onFrame = (payload: Uint8Array) => {
      completed++;
      frameHeaderView.setInt32(0, payload.length + 4, true);
      this.#pending++;
      this.#framesIn++;
      this.#events.frame(this, frameHeader, payload);
    };
    while (!this.#ended) {
      if (this.#pending >= this.#options.maxPendingFrames) {
        // Backpressure: stop reading until handlers catch up; TCP does the rest.
        this.#deadline?.pause();
        await new Promise<void>((resolve) => this.#resume = resolve);
        if (this.#ended) return;
        this.#deadline?.resume();
      }
      const gate = this.#options.gate;
      if (gate !== undefined && !gate.isOpen) {
        // The process holds as many messages as it may: every socket waits.
        this.#deadline?.pause();
        await gate.wait();
        if (this.#ended) return;
        this.#deadline?.resume();
      }
      // The read budget of this round: the process's (smaller while overloaded),
      // and no more than about the frames this socket may still have pending, so
      // one flooding socket cannot hand the scheduler thousands of frames at once.
      let budget = gate === undefined ? buffer.length : Math.min(buffer.length, gate.readBytes);
      if (this.#framesIn > 0) {
        const room = Math.min(FRAMES_PER_READ, this.#options.maxPendingFrames - this.#pending);
        const perFrame = Math.ceil(this.#bytesIn / this.#framesIn);
        budget = Math.min(budget, Math.max(perFrame, room * perFrame));
      }
      let count: number | null;
      try {
        count = await this.#conn.read(
          budget === buffer.length ? buffer : buffer.subarray(0, budget),
        );
      } catch (error) {
        if (this.#ended) return;
        this.#end(CloseReason.ReadError, error instanceof Error ? error.message : String(error));
        return;
      }
      if (count === null) {
        this.#end(CloseReason.Peer, "");
        return;
      }
      if (this.#ended) return;
      this.#bytesIn += count;
      this.#lastInput = this.#options.clock.now();
      const full = count === buffer.length && buffer.length < this.#options.readBufferBytes;
      const wasPartial = this.#decoder.pendingHeader;
      completed = 0;
      try {
        this.#decoder.push(buffer.subarray(0, count), onFrame);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        const reason = error.code === "frame_too_large"
          ? CloseReason.FrameTooLarge
          : CloseReason.FrameTooSmall;
        this.#end(reason, error.message);
        return;
      }
      // The decoder copied what it keeps, so the buffer can be replaced now.
      if (full) buffer = new Uint8Array(Math.min(buffer.length * 4, this.#options.readBufferBytes));
      if (this.#ended) return;
      // A partial frame left now began in this chunk unless it was already
      // buffered and nothing completed (then it is the same, older frame).
      this.#deadline?.afterRead(!wasPartial || completed > 0, this.#lastInput);
    }
  }

  #startWriting(): void {
    if (this.#writing || this.#ended) return;
    this.#writing = true;
    this.#writeLoop().catch((error) => {
      this.#end(CloseReason.WriteError, error instanceof Error ? error.message : String(error));
    });
  }

  async #writeLoop(): Promise<void> {
    try {
      await this.#writeQueued();
    } finally {
      this.#writing = false;
    }
    // `#writeQueued` saw an empty queue one microtask before this line ran: a
    // frame queued and flushed in between found `#writing` still set. Write it.
    if (this.#out.length > 0 && !this.#ended && (this.#commitMs === 0 || this.#closeAfterFlush)) {
      this.#startWriting();
      return;
    }
    if (this.#closeAfterFlush) this.#end(CloseReason.Script, "");
  }

  async #writeQueued(): Promise<void> {
    while (this.#out.length > 0 && !this.#ended) {
      const chunks = this.#out;
      const total = this.#outBytes;
      this.#out = [];
      this.#outBytes = 0;
      // Coalesce everything queued into one write.
      let bytes: Uint8Array;
      if (chunks.length === 1) {
        bytes = chunks[0]!;
      } else {
        bytes = new Uint8Array(total);
        let offset = 0;
        for (const chunk of chunks) {
          bytes.set(chunk, offset);
          offset += chunk.length;
        }
      }
      let written = 0;
      while (written < bytes.length) {
        written += await this.#conn.write(written === 0 ? bytes : bytes.subarray(written));
        if (this.#ended) return;
      }
      this.#bytesOut += bytes.length;
    }
  }

  #armExpiry(ms: number): void {
    const idle = this.#options.clock.now() - this.#lastInput;
    this.#expireTimer = this.#options.clock.setTimeout(() => {
      this.#expireTimer = undefined;
      if (this.#ended || this.#expireMs !== ms) return;
      const quiet = this.#options.clock.now() - this.#lastInput;
      if (quiet >= ms) this.#end(CloseReason.Expired, `no input for ${Math.round(quiet)} ms`);
      else this.#armExpiry(ms);
    }, Math.max(0, ms - idle));
  }

  #end(reason: CloseReasonCode, detail: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#expireTimer?.cancel();
    this.#commitTimer?.cancel();
    this.#deadline?.cancel();
    this.#expireTimer = undefined;
    this.#commitTimer = undefined;
    this.#out = [];
    this.#outBytes = 0;
    this.#conn.close();
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.();
    this.#events.closed(this, reason, detail);
  }
}
