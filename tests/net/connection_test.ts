/**
 * Connection's frame deadline (slowloris defence), driven by a ManualClock over
 * an in-memory stream.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Connection, type ConnectionOptions } from "../../core/net/connection.ts";
import { encodeFrame } from "../../core/net/framing.ts";
import { FlowGate, PendingBound } from "../../core/net/flow_gate.ts";
import type { StreamConn } from "../../core/net/transport.ts";
import { CloseReason, type CloseReasonCode } from "../../core/pool/wire.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

/** A StreamConn whose input the test feeds chunk by chunk. */
class FakeConn implements StreamConn {
  readonly local = "127.0.0.1:8000";
  readonly remote = "127.0.0.1:50000";
  closed = false;
  #chunks: Uint8Array[] = [];
  #waiter: ((chunk: Uint8Array | null) => void) | undefined;

  feed(chunk: Uint8Array): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter !== undefined) waiter(chunk);
    else this.#chunks.push(chunk);
  }

  read(buffer: Uint8Array): Promise<number | null> {
    const take = (chunk: Uint8Array | null): number | null => {
      if (chunk === null) return null;
      const count = Math.min(buffer.length, chunk.length);
      buffer.set(chunk.subarray(0, count));
      if (count < chunk.length) this.#chunks.unshift(chunk.subarray(count));
      return count;
    };
    const next = this.#chunks.shift();
    if (next !== undefined) return Promise.resolve(take(next));
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiter = (chunk) => resolve(take(chunk)));
  }

  write(bytes: Uint8Array): Promise<number> {
    return Promise.resolve(bytes.length);
  }

  close(): void {
    this.closed = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
  }
}

interface Harness {
  clock: ManualClock;
  conn: FakeConn;
  connection: Connection;
  frames: Uint8Array[];
  closed: { reason: CloseReasonCode; detail: string }[];
}

function open(options: Partial<ConnectionOptions> = {}): Harness {
  const clock = new ManualClock();
  const conn = new FakeConn();
  const frames: Uint8Array[] = [];
  const closed: { reason: CloseReasonCode; detail: string }[] = [];
  const connection = new Connection(1, "tcp://127.0.0.1:8000", conn, {
    frame: (_connection, _header, payload) => frames.push(payload.slice()),
    closed: (_connection, reason, detail) => closed.push({ reason, detail }),
  }, {
    maxIn: 64 * 1024,
    maxQueuedOut: 1024 * 1024,
    maxPendingFrames: 1_000_000,
    readBufferBytes: 64 * 1024,
    frameDeadlineMs: 1000,
    clock,
    log: getLogger(["stage", "test"]),
    ...options,
  });
  connection.start();
  return { clock, conn, connection, frames, closed };
}

/** Lets the read loop take what was fed. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function feed(harness: Harness, chunk: Uint8Array): Promise<void> {
  harness.conn.feed(chunk);
  await settle();
}

function frameOf(size: number, fill = 1): Uint8Array {
  return encodeFrame(new Uint8Array(size).fill(fill));
}

Deno.test("Connection closes a peer that sends half a header and stalls past the frame deadline", async () => {
  const harness = open();
  await feed(harness, new Uint8Array([40, 0]));
  harness.clock.advance(999);
  assert.equal(harness.connection.ended, false);
  harness.clock.advance(1);
  assert.equal(harness.connection.ended, true);
  assert.deepEqual(harness.closed, [{
    reason: CloseReason.FrameDeadline,
    detail: "2 of 4 header bytes received in 1000 ms",
  }]);
  assert.equal(harness.conn.closed, true);
  assert.equal(harness.clock.pending, 0);
  await settle();
});

Deno.test("Connection closes a peer that sends a header and half a body and stalls", async () => {
  const harness = open();
  await feed(harness, frameOf(96).subarray(0, 50));
  harness.clock.advance(1000);
  assert.deepEqual(harness.closed, [{
    reason: CloseReason.FrameDeadline,
    detail: "50 of 100 frame bytes received in 1000 ms",
  }]);
  assert.deepEqual(harness.frames, []);
  await settle();
});

Deno.test("Connection's frame deadline runs from a frame's first byte, not from its latest byte", async () => {
  const harness = open();
  const frame = frameOf(20);
  for (let i = 0; i < 9; i++) {
    await feed(harness, frame.subarray(i, i + 1)); // one byte every 120 ms
    assert.ok(harness.clock.pending <= 1, "one deadline timer at most");
    harness.clock.advance(120);
  }
  assert.equal(harness.connection.ended, true, "trickling does not extend the deadline");
  assert.equal(harness.closed[0]?.reason, CloseReason.FrameDeadline);
  assert.equal(harness.closed[0]?.detail, "9 of 24 frame bytes received in 1000 ms");
  await settle();
});

Deno.test("Connection never trips the frame deadline for split frames that complete in time", async () => {
  const harness = open();
  for (let i = 0; i < 50; i++) {
    const frame = frameOf(10, i);
    await feed(harness, frame.subarray(0, 2));
    harness.clock.advance(999);
    await feed(harness, frame.subarray(2)); // completes just before the deadline
    assert.equal(harness.clock.pending, 0, "the timer is cancelled once the frame completes");
    harness.clock.advance(5000);
  }
  assert.equal(harness.connection.ended, false);
  assert.equal(harness.frames.length, 50);
  assert.deepEqual(harness.frames[49], new Uint8Array(10).fill(49));
  harness.connection.close(CloseReason.Shutdown, "");
  await settle();
});

Deno.test("Connection gives each frame of a stream that always ends mid-frame its own deadline", async () => {
  const harness = open();
  // Every read completes one 4 KiB frame and carries the first half of the next;
  // the stream always holds a partial frame, yet each frame takes 600 ms < 1000 ms.
  const frames = Array.from({ length: 30 }, (_, i) => frameOf(4096, i));
  await feed(harness, frames[0]!.subarray(0, 2048));
  for (let i = 0; i < 29; i++) {
    harness.clock.advance(600);
    await feed(
      harness,
      new Uint8Array([...frames[i]!.subarray(2048), ...frames[i + 1]!.subarray(0, 2048)]),
    );
    assert.ok(harness.clock.pending <= 1, "one deadline timer at most");
  }
  assert.equal(harness.connection.ended, false, JSON.stringify(harness.closed));
  assert.equal(harness.frames.length, 29);
  harness.clock.advance(1000); // the last frame stalls
  assert.equal(harness.closed[0]?.reason, CloseReason.FrameDeadline);
  await settle();
});

Deno.test("Connection with frameDeadlineMs 0 lets a partial frame wait indefinitely", async () => {
  const harness = open({ frameDeadlineMs: 0 });
  await feed(harness, new Uint8Array([40, 0]));
  assert.equal(harness.clock.pending, 0);
  harness.clock.advance(3_600_000);
  assert.equal(harness.connection.ended, false);
  harness.connection.close(CloseReason.Shutdown, "");
  await settle();
});

Deno.test("Connection does not count time with reading paused for backpressure against a frame", async () => {
  const harness = open({ maxPendingFrames: 1 });
  // A complete frame fills the pending bound; the next one has begun.
  const chunk = new Uint8Array([...frameOf(4), ...frameOf(4).subarray(0, 3)]);
  await feed(harness, chunk);
  assert.equal(harness.frames.length, 1);
  assert.equal(harness.clock.pending, 0, "no deadline while reading is paused");
  harness.clock.advance(5000);
  assert.equal(harness.connection.ended, false, "the stall was ours");
  harness.connection.frameDone();
  await settle();
  harness.clock.advance(999);
  assert.equal(harness.connection.ended, false);
  harness.clock.advance(1);
  assert.equal(harness.closed[0]?.reason, CloseReason.FrameDeadline);
  await settle();
});

Deno.test("Connection cancels its frame deadline when it closes for another reason", async () => {
  const harness = open();
  await feed(harness, new Uint8Array([40, 0, 0]));
  assert.equal(harness.clock.pending, 1);
  harness.conn.close(); // the peer goes away
  await settle();
  assert.deepEqual(harness.closed, [{ reason: CloseReason.Peer, detail: "" }]);
  assert.equal(harness.clock.pending, 0);
});

Deno.test("Connection stops reading while the process's input gate is closed and resumes when it opens", async () => {
  const gate = new FlowGate(64 * 1024);
  const harness = open({ gate });
  await feed(harness, frameOf(10));
  assert.equal(harness.frames.length, 1);
  gate.close();
  await feed(harness, frameOf(10, 2)); // the loop was already waiting in read: this one lands
  harness.conn.feed(frameOf(10, 3));
  await settle();
  assert.equal(harness.frames.length, 2, "read past a closed gate");
  gate.open();
  await settle();
  assert.equal(harness.frames.length, 3);
  harness.connection.close(CloseReason.Shutdown, "");
});

Deno.test("Connection reads about 64 frames of a socket per round, however much it sent", async () => {
  const harness = open();
  const asked: number[] = [];
  const read = harness.conn.read.bind(harness.conn);
  harness.conn.read = (buffer) => {
    asked.push(buffer.length);
    return read(buffer);
  };
  await feed(harness, frameOf(10)); // learns the frame size (14 bytes)
  const many = new Uint8Array(500 * 14);
  for (let i = 0; i < 500; i++) many.set(frameOf(10), i * 14);
  await feed(harness, many);
  for (let i = 0; i < 50 && harness.frames.length < 501; i++) await settle();
  assert.equal(harness.frames.length, 501);
  // ~64 frames by the running average frame size (partial frames round it up a little).
  assert.ok(Math.max(...asked.slice(1)) <= 64 * 16, `asked for ${Math.max(...asked)} bytes`);
  harness.connection.close(CloseReason.Shutdown, "");
});

Deno.test("PendingBound closes the gate at its bound and opens it below 90 %", () => {
  const gate = new FlowGate(1024);
  const bound = new PendingBound(10, gate);
  for (let i = 0; i < 9; i++) bound.add();
  assert.equal(gate.isOpen, true);
  bound.add();
  assert.equal(gate.isOpen, false);
  bound.remove();
  assert.equal(gate.isOpen, false, "no flapping right below the bound");
  bound.remove();
  assert.equal(gate.isOpen, true);
  assert.equal(bound.count, 8);
});
