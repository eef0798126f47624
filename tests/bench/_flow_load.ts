/**
 * The flow benchmark's load generator: lean clients over raw `Deno.connect`
 * sockets (one per connection), request frames written in batches, and one shared
 * record of every reply (send time, receive time, client).
 *
 * - {@linkcode ClosedLoopClient}: keeps `depth` requests in flight (request → reply
 *   → next).
 * - {@linkcode PacedClient}: open loop, sends at a fixed rate whatever the replies
 *   do; frames due while a write is still blocked are counted as unsent, not queued.
 * - {@linkcode Flooder}: writes frames as fast as the socket takes them, never reads.
 *
 * @module
 */
import {
  FrameReader,
  HEADER_BYTES,
  PAYLOAD_BYTES,
  requestFrames,
  sentAt,
  writeRequests,
} from "./_flow_protocol.ts";
import { ReplyLog, round } from "./_flow_replies.ts";

const FRAME_BYTES = HEADER_BYTES + PAYLOAD_BYTES;

/** Opens `count` connections to `port`, `batch` at a time; closes them all on failure. */
export async function connectMany(
  port: number,
  count: number,
  batch = 250,
): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  try {
    while (conns.length < count) {
      const n = Math.min(batch, count - conns.length);
      const opened = await Promise.allSettled(
        Array.from({ length: n }, () => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      for (const result of opened) if (result.status === "fulfilled") conns.push(result.value);
      const failed = opened.find((result) => result.status === "rejected");
      if (failed !== undefined) {
        throw new Error(
          `connection ${conns.length + 1} of ${count} failed: ${
            (failed as PromiseRejectedResult).reason
          }`,
        );
      }
    }
    for (const conn of conns) conn.setNoDelay(true);
    return conns;
  } catch (error) {
    closeAll(conns);
    throw error;
  }
}

/** Closes every connection, ignoring those already closed. */
export function closeAll(conns: Iterable<Deno.TcpConn>): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Fills `buffer` from `conn`; false when the peer closed first. */
export async function readExactly(conn: Deno.TcpConn, buffer: Uint8Array): Promise<boolean> {
  let got = 0;
  while (got < buffer.length) {
    const n = await conn.read(buffer.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

/**
 * One echo round trip on each connection (`batch` connections at a time): proves the
 * server accepted and serves them. Rejects naming the first connection that failed.
 */
export async function pingAll(conns: Deno.TcpConn[], batch = 500): Promise<void> {
  const frame = requestFrames(1, 0, 0, 0);
  for (let start = 0; start < conns.length; start += batch) {
    await Promise.all(
      conns.slice(start, start + batch).map(async (conn, i) => {
        const reply = new Uint8Array(FRAME_BYTES);
        try {
          await writeAll(conn, frame);
          let got = 0;
          while (got < reply.length) {
            const n = await conn.read(reply.subarray(got));
            if (n === null) throw new Error("closed by the server");
            got += n;
          }
        } catch (error) {
          throw new Error(`ping on connection ${start + i + 1}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }),
    );
  }
}

/** A connection whose replies go to a {@linkcode ReplyLog}. */
abstract class LoggedClient {
  readonly id: number;
  protected readonly conn: Deno.TcpConn;
  protected readonly log: ReplyLog;
  protected stopped = false;
  /** The first error of this connection (a server close counts), if any. */
  failure: unknown;
  /** When the connection failed or was closed by the server (performance.now()). */
  endedAt: number | undefined;
  readonly #reader = new FrameReader();
  readonly #done: Promise<void>;

  constructor(id: number, conn: Deno.TcpConn, log: ReplyLog) {
    this.id = id;
    this.conn = conn;
    this.log = log;
    this.#done = this.#readLoop();
  }

  /** Stops sending; replies still arriving are logged until `close`. */
  stop(): void {
    this.stopped = true;
  }

  /** Closes the connection and waits for the read loop. */
  async close(): Promise<void> {
    this.stopped = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#done;
  }

  /** Called after each reply was logged. */
  protected abstract onReply(): void;

  protected fail(error: unknown): void {
    this.failure ??= error;
    this.endedAt ??= performance.now();
  }

  #onFrame = (payload: Uint8Array): void => {
    if (payload.length !== PAYLOAD_BYTES) this.log.invalid++;
    else this.log.record(sentAt(payload), performance.now(), this.id);
    this.onReply();
  };

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) {
          if (!this.stopped) this.fail(new Error("closed by the server"));
          return;
        }
        this.#reader.push(buffer.subarray(0, n), this.#onFrame);
      }
    } catch (error) {
      if (!this.stopped) this.fail(error);
    }
  }
}

/** Keeps `depth` requests in flight: every reply sends the next request. */
export class ClosedLoopClient extends LoggedClient {
  readonly #costUs: number;
  #toSend: number;
  #writing = false;
  #seq = 0;

  constructor(id: number, conn: Deno.TcpConn, log: ReplyLog, depth = 1, costUs = 0) {
    super(id, conn, log);
    this.#costUs = costUs;
    this.#toSend = depth;
    this.#flush();
  }

  protected onReply(): void {
    if (this.stopped) return;
    this.#toSend++;
    this.#flush();
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    try {
      while (this.#toSend > 0 && !this.stopped) {
        const n = this.#toSend;
        this.#toSend = 0;
        const frames = requestFrames(n, performance.now(), this.#seq, this.#costUs);
        this.#seq += n;
        await writeAll(this.conn, frames);
      }
    } catch (error) {
      if (!this.stopped) this.fail(error);
    } finally {
      this.#writing = false;
    }
  }
}

/**
 * Open loop: `tick(now)` sends the frames due at `ratePerS` since `start`; frames due
 * while the previous write is still blocked (TCP backpressure) are counted in
 * `unsent` instead of being queued.
 */
export class PacedClient extends LoggedClient {
  readonly #ratePerS: number;
  readonly #costUs: number;
  #start = 0;
  #due = 0;
  #writing = false;
  sent = 0;
  unsent = 0;

  constructor(id: number, conn: Deno.TcpConn, log: ReplyLog, ratePerS: number, costUs = 0) {
    super(id, conn, log);
    this.#ratePerS = ratePerS;
    this.#costUs = costUs;
  }

  /** Starts the schedule at `now` (the first frame is due at once). */
  begin(now: number): void {
    this.#start = now;
    this.#due = 0;
  }

  /** Sends what is due at `now`. */
  tick(now: number): void {
    if (this.stopped || this.failure !== undefined) return;
    const due = Math.floor(((now - this.#start) * this.#ratePerS) / 1000) + 1;
    const n = due - this.#due;
    if (n <= 0) return;
    this.#due = due;
    if (this.#writing) {
      this.unsent += n;
      return;
    }
    this.log.recordSent(now, n);
    this.#write(requestFrames(n, now, this.sent, this.#costUs), n);
  }

  protected onReply(): void {}

  async #write(frames: Uint8Array, n: number): Promise<void> {
    this.#writing = true;
    try {
      await writeAll(this.conn, frames);
      this.sent += n;
    } catch (error) {
      if (!this.stopped) this.fail(error);
    } finally {
      this.#writing = false;
    }
  }
}

/** Drives `clients` every `tickMs` until `stop()`. */
export class Pacer {
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(clients: PacedClient[], tickMs = 5) {
    const now = performance.now();
    for (const client of clients) client.begin(now);
    const tick = () => {
      const at = performance.now();
      for (const client of clients) client.tick(at);
    };
    tick();
    this.#timer = setInterval(tick, tickMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Writes request frames as fast as the socket accepts them and never reads. */
export class Flooder {
  readonly #conn: Deno.TcpConn;
  readonly #batch: Uint8Array;
  readonly #framesPerBatch: number;
  readonly #startedAt = performance.now();
  readonly #done: Promise<void>;
  #stopped = false;
  framesWritten = 0;
  /** ms after the start when the server closed the connection (undefined: it did not). */
  closedAfterMs: number | undefined;
  /** When the server closed the connection (performance.now()), if it did. */
  closedAt: number | undefined;

  constructor(conn: Deno.TcpConn, batchBytes = 64 * 1024) {
    this.#conn = conn;
    this.#framesPerBatch = Math.max(1, Math.floor(batchBytes / FRAME_BYTES));
    this.#batch = new Uint8Array(this.#framesPerBatch * FRAME_BYTES);
    writeRequests(this.#batch, 0, this.#framesPerBatch, performance.now(), 0, 0);
    this.#done = this.#loop();
  }

  /** Stops and closes the connection. */
  async close(): Promise<void> {
    this.#stopped = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    await this.#done;
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#stopped) {
        await writeAll(this.#conn, this.#batch);
        this.framesWritten += this.#framesPerBatch;
      }
    } catch {
      if (!this.#stopped) {
        this.closedAt = performance.now();
        this.closedAfterMs = round(this.closedAt - this.#startedAt, 0);
      }
    }
  }
}

/** Sends one request costing `costUs` and resolves with its reply time in ms. */
export async function oneRequest(conn: Deno.TcpConn, costUs: number): Promise<number> {
  const start = performance.now();
  await writeAll(conn, requestFrames(1, start, 0, costUs));
  const reply = new Uint8Array(FRAME_BYTES);
  let got = 0;
  while (got < reply.length) {
    const n = await conn.read(reply.subarray(got));
    if (n === null) throw new Error("closed by the server before replying");
    got += n;
  }
  return performance.now() - start;
}
