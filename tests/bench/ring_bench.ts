/**
 * Benchmark of the ring channel against postMessage between the main thread and a worker.
 *
 * Scenarios, each run once through RingSender/RingReceiver and once through postMessage
 * with the same worker:
 *
 * - `64B one-way`: the main thread sends 64-byte messages; the worker reads each one,
 *   checks its sequence number and sums a checksum, and acknowledges the last.
 * - `64B echo`: the worker sends every message back; the main thread checks each echo.
 *
 * Prints one JSON line per scenario. Options: `--ring=<messages>` (default 2,000,000),
 * `--postmessage=<messages>` (default 200,000).
 *
 * This module is also the worker's entry point (it detects a worker global scope).
 *
 * @module
 */

import { RingBuffer, RingReceiver, RingSender } from "../../core/ring/mod.ts";

const BODY_BYTES = 64;
const TAG = 1;
const ECHO_WINDOW = 8192;
const IN_WORKER = "WorkerGlobalScope" in globalThis;

type Mode = "ring" | "post";
type Shape = "one-way" | "echo";

interface StartRequest {
  kind: "start";
  mode: Mode;
  shape: Shape;
  count: number;
  pooled?: boolean;
  toWorker?: SharedArrayBuffer;
  toMain?: SharedArrayBuffer;
}

interface Ack {
  kind: "ack";
  received: number;
  checksum: number;
  errors: number;
}

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
}

/** Sequence number stamped in the first four bytes of a body (little-endian). */
function seqOf(body: Uint8Array): number {
  return (body[0]! | (body[1]! << 8) | (body[2]! << 16) | (body[3]! << 24)) >>> 0;
}

function stamp(body: Uint8Array, seq: number): void {
  body[0] = seq & 0xFF;
  body[1] = (seq >>> 8) & 0xFF;
  body[2] = (seq >>> 16) & 0xFF;
  body[3] = seq >>> 24;
}

/** Per-message work of the receiving side, identical for both transports. */
class Counter {
  received = 0;
  checksum = 0;
  errors = 0;

  take(body: Uint8Array): void {
    if (body.byteLength !== BODY_BYTES || seqOf(body) !== this.received) this.errors++;
    this.checksum = (this.checksum + body[BODY_BYTES - 1]!) >>> 0;
    this.received++;
  }

  ack(): Ack {
    return { kind: "ack", received: this.received, checksum: this.checksum, errors: this.errors };
  }
}

function serveWorker(scope: WorkerScope): void {
  let post: { counter: Counter; request: StartRequest } | undefined;
  scope.onmessage = async (event: MessageEvent<StartRequest | Uint8Array>) => {
    const data = event.data;
    if (data instanceof Uint8Array) {
      const { counter, request } = post!;
      counter.take(data);
      if (request.shape === "echo") scope.postMessage(data);
      if (counter.received === request.count) scope.postMessage(counter.ack());
      return;
    }
    const counter = new Counter();
    if (data.mode === "post") {
      post = { counter, request: data };
      return;
    }
    const options = { pooledBodies: data.pooled ?? false };
    const receiver = new RingReceiver(new RingBuffer(data.toWorker!, options));
    using sender = new RingSender(new RingBuffer(data.toMain!));
    const echo = data.shape === "echo";
    const onRecord = (tag: number, a: number, b: number, body: Uint8Array) => {
      counter.take(body);
      if (echo) sender.send(tag, a, b, body);
    };
    while (counter.received < data.count) {
      if (receiver.drain(onRecord) === 0) await receiver.wait();
    }
    await sender.flushed();
    scope.postMessage(counter.ack());
  };
}

function nextAck(worker: Worker, onEcho?: (body: Uint8Array) => void): Promise<Ack> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<Ack | Uint8Array>) => {
      if (event.data instanceof Uint8Array) onEcho?.(event.data);
      else resolve(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`Benchmark worker failed: ${event.message}`));
    };
  });
}

function checkAck(ack: Ack, count: number, expected: Counter): void {
  if (ack.received !== count || ack.errors !== 0 || ack.checksum !== expected.checksum) {
    throw new Error(
      `Worker acknowledged ${ack.received}/${count} messages with ${ack.errors} errors and checksum ${ack.checksum} (expected ${expected.checksum})`,
    );
  }
}

/** Sends `count` messages through a ring pair; returns elapsed milliseconds. */
async function runRing(
  worker: Worker,
  shape: Shape,
  count: number,
  pooled: boolean,
): Promise<number> {
  const toWorker = RingBuffer.create();
  const toMain = RingBuffer.create(undefined, { pooledBodies: pooled });
  using sender = new RingSender(toWorker);
  const receiver = new RingReceiver(toMain);
  const echoes = new Counter();
  const expected = new Counter();
  const onEcho = (_tag: number, _a: number, _b: number, body: Uint8Array) => echoes.take(body);
  const acked = nextAck(worker);
  const request: StartRequest = {
    kind: "start",
    mode: "ring",
    shape,
    count,
    pooled,
    toWorker: toWorker.buffer,
    toMain: toMain.buffer,
  };
  worker.postMessage(request);
  const body = new Uint8Array(BODY_BYTES);
  const started = performance.now();
  for (let seq = 0; seq < count; seq++) {
    stamp(body, seq);
    body[BODY_BYTES - 1] = seq & 0xFF;
    expected.take(body);
    sender.send(TAG, seq, 0, body);
    if (shape === "echo") {
      // Bound the messages in flight, as a request/response protocol would.
      while (seq + 1 - echoes.received >= ECHO_WINDOW) {
        if (receiver.drain(onEcho) === 0) await receiver.wait(1000);
      }
    } else if (sender.queuedBytes > 256 * 1024) {
      await sender.flushed();
    }
  }
  while (echoes.received < (shape === "echo" ? count : 0)) {
    if (receiver.drain(onEcho) === 0) await receiver.wait(1000);
  }
  const ack = await acked;
  const elapsed = performance.now() - started;
  checkAck(ack, count, expected);
  if (shape === "echo") checkAck(echoes.ack(), count, expected);
  return elapsed;
}

/** Sends `count` messages with postMessage; returns elapsed milliseconds. */
async function runPostMessage(worker: Worker, shape: Shape, count: number): Promise<number> {
  const echoes = new Counter();
  const expected = new Counter();
  const request: StartRequest = { kind: "start", mode: "post", shape, count };
  worker.postMessage(request);
  const acked = nextAck(worker, (body) => echoes.take(body));
  const body = new Uint8Array(BODY_BYTES);
  const started = performance.now();
  for (let seq = 0; seq < count; seq++) {
    stamp(body, seq);
    body[BODY_BYTES - 1] = seq & 0xFF;
    expected.take(body);
    worker.postMessage(body);
  }
  const ack = await acked;
  if (shape === "echo") {
    // Echoes posted before the ack arrive before it.
    checkAck(echoes.ack(), count, expected);
  }
  const elapsed = performance.now() - started;
  checkAck(ack, count, expected);
  return elapsed;
}

function option(args: string[], name: string, fallback: number): number {
  const arg = args.find((candidate) => candidate.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const value = Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`Option --${name} must be a positive integer, got "${arg}"`);
  }
  return value;
}

/**
 * Runs the ring-versus-postMessage benchmark and prints one JSON line per scenario.
 *
 * @param args `--ring=<messages>` and `--postmessage=<messages>`.
 */
export async function run(args: string[]): Promise<void> {
  const ringCount = option(args, "ring", 2_000_000);
  const postCount = option(args, "postmessage", 200_000);
  const worker = new Worker(import.meta.url, { type: "module" });
  try {
    // Warm-up, so both transports are measured with optimised code.
    for (const shape of ["one-way", "echo"] as const) {
      await runRing(worker, shape, 100_000, false);
      await runRing(worker, shape, 100_000, true);
      await runPostMessage(worker, shape, 20_000);
    }
    for (const shape of ["one-way", "echo"] as const) {
      const postMs = await runPostMessage(worker, shape, postCount);
      const postRate = Math.round(postCount / (postMs / 1000));
      for (const pooled of [false, true]) {
        const ringMs = await runRing(worker, shape, ringCount, pooled);
        const ringRate = Math.round(ringCount / (ringMs / 1000));
        // deno-lint-ignore no-console
        console.log(JSON.stringify({
          bench: "ring",
          scenario: `${BODY_BYTES}B ${shape}${pooled ? ", pooled bodies" : ""}`,
          messages: ringCount,
          ring_msgs_per_s: ringRate,
          postmessage_messages: postCount,
          postmessage_msgs_per_s: postRate,
          ratio: Math.round((ringRate / postRate) * 100) / 100,
        }));
      }
    }
  } finally {
    worker.terminate();
  }
}

if (IN_WORKER) serveWorker(globalThis as unknown as WorkerScope);
else if (import.meta.main) await run(Deno.args);
