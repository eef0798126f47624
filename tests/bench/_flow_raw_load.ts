/**
 * The flow benchmark's raw-socket load: connections that must not behave like a
 * client SDK `StageClient`, which always reads and owns a read buffer and two loops.
 * - {@linkcode Flooder}: writes frames as fast as the socket takes them, never reads.
 * - {@linkcode connectMany} / {@linkcode pingAll}: c10k's thousands of idle connections.
 *
 * @module
 */
import { HEADER_BYTES, PAYLOAD_BYTES, requestFrames, writeRequests } from "./_flow_protocol.ts";
import { round } from "./_flow_replies.ts";

const FRAME_BYTES = HEADER_BYTES + PAYLOAD_BYTES;

/**
 * Opens `count` raw connections to `port`, `batch` at a time; closes them all on failure.
 * Raw on purpose (c10k's idle connections): thousands of SDK clients would each hold a
 * read buffer and two loops in the generator, and idle sockets need neither.
 */
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

/**
 * Writes request frames as fast as the socket accepts them and never reads.
 * A raw socket on purpose: a StageClient always reads (up to its inbox limit).
 */
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
