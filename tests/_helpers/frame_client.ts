/**
 * A framed TCP client for tests and benchmarks: sends and reads frames
 * (4-byte little-endian total length + payload) with the bson, json or raw codec.
 */
import { BSON } from "bson";
import { FrameDecoder } from "../../core/net/mod.ts";

export type ClientCodec = "bson" | "json" | "raw";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes one value as a frame. */
export function encodeValue(value: unknown, codec: ClientCodec): Uint8Array {
  if (codec === "bson") return BSON.serialize(value as Record<string, unknown>);
  const payload = codec === "json" ? encoder.encode(JSON.stringify(value)) : value as Uint8Array;
  const frame = new Uint8Array(payload.length + 4);
  new DataView(frame.buffer).setInt32(0, frame.length, true);
  frame.set(payload, 4);
  return frame;
}

/** A connected client. Close it (or use `await using`). */
export class FrameClient {
  readonly conn: Deno.TcpConn;
  readonly codec: ClientCodec;
  #decoder: FrameDecoder;
  #frames: unknown[] = [];
  #waiters: (() => void)[] = [];
  #ended = false;
  #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, codec: ClientCodec, maxFrame: number) {
    this.conn = conn;
    this.codec = codec;
    this.#decoder = new FrameDecoder(maxFrame);
    this.#reading = this.#readLoop();
  }

  static async connect(
    port: number,
    codec: ClientCodec = "bson",
    hostname = "127.0.0.1",
    maxFrame = 16 * 1024 * 1024,
  ): Promise<FrameClient> {
    const conn = await Deno.connect({ hostname, port });
    conn.setNoDelay(true);
    return new FrameClient(conn, codec, maxFrame);
  }

  /** Whether the server closed the connection. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Frames received and not yet taken. */
  get buffered(): number {
    return this.#frames.length;
  }

  async send(...values: unknown[]): Promise<void> {
    const frames = values.map((value) => encodeValue(value, this.codec));
    await this.writeAll(frames.length === 1 ? frames[0]! : concat(frames));
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
  }

  /** The next decoded frame; rejects after `timeoutMs` or when the connection ends first. */
  async next<T = Record<string, unknown>>(timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.#frames.length === 0) {
      if (this.#ended) throw new Error("connection closed before the next frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
      await this.#wait(left);
    }
    return this.#frames.shift() as T;
  }

  /** Resolves once the server closed the connection (rejects after `timeoutMs`). */
  async closedByServer(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await this.#wait(left);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#reading;
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.#decoder.push(buffer.subarray(0, n), (payload) => {
          this.#frames.push(this.#decode(payload));
        });
        this.#wake();
      }
    } catch {
      // reset or closed locally
    }
    this.#ended = true;
    this.#wake();
  }

  #decode(payload: Uint8Array): unknown {
    if (this.codec === "json") return JSON.parse(decoder.decode(payload));
    if (this.codec === "raw") return payload.slice();
    const doc = new Uint8Array(payload.length + 4);
    new DataView(doc.buffer).setInt32(0, doc.length, true);
    doc.set(payload, 4);
    return BSON.deserialize(doc);
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
