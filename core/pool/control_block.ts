/**
 * A worker's control block: a small SharedArrayBuffer in which the worker
 * publishes what it runs and since when, and the main thread raises the yield
 * flag. It is the seam the watchdog (forced yielding) reads and writes.
 *
 * @module
 */

const STATE = 0; // Int32 slot: 0 idle, 1 running
const YIELD = 1; // Int32 slot: 1 = asked to yield
const TAG = 2; // Int32 slot: tag of the running record
const KEY = 3; // Int32 slot: key of the running record (uint32 stored as int32)
const TICKET = 4; // Int32 slot: claim ticket of the running record (slot | generation << 12)
const STARTS = 5; // Int32 slot: ticketed records started so far (wraps)
const STARTED = 3; // Float64 slot (byte 24): epoch ms the running record started
const HANDLED = 4; // Float64 slot (byte 32): records handled so far
const YIELDS = 5; // Float64 slot (byte 40): cooperative yields so far
const BUSY = 6; // Float64 slot (byte 48): ms spent running records so far
const LOOP = 7; // Float64 slot (byte 56): epoch ms the worker's ring loop last turned
const BLOCKED = 16; // Int32 slot (byte 64): records queued behind a busy key in the worker
const BYTES = 72;

/** What a control block says about its worker at one instant. */
export interface ControlSnapshot {
  running: boolean;
  tag: number;
  key: number;
  /** Claim ticket of the running record (slot | generation << 12; 0 = none). */
  ticket: number;
  /** Epoch milliseconds the running record started (meaningful while running). */
  startedAt: number;
  handled: number;
  /** Cooperative yields so far. */
  yields: number;
  /** Milliseconds spent running records so far. */
  busyMs: number;
  /** Epoch ms the worker's ring loop last turned (read its ring). */
  loopAt: number;
  yieldRequested: boolean;
}

/**
 * A view of one worker's control block; both threads hold one over the same buffer.
 *
 * @example
 * ```ts
 * import { ControlBlock } from "./control_block.ts";
 * const block = ControlBlock.create();
 * block.begin(2, 7, 1000);
 * if (!block.snapshot().running) throw new Error("not running");
 * block.end();
 * ```
 */
export class ControlBlock {
  readonly buffer: SharedArrayBuffer;
  #i32: Int32Array;
  #f64: Float64Array;

  /** Allocates a fresh control block. */
  static create(): ControlBlock {
    return new ControlBlock(new SharedArrayBuffer(BYTES));
  }

  /** Attaches to an existing control block. */
  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength < BYTES) {
      throw new RangeError(`Control block of ${buffer.byteLength} bytes is smaller than ${BYTES}`);
    }
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer, 0, BYTES / 4);
    this.#f64 = new Float64Array(buffer, 0, BYTES / 8);
  }

  /** Worker side: a record with `tag`, `key` and claim `ticket` starts at epoch ms `now`. */
  begin(tag: number, key: number, now: number, ticket = 0): void {
    this.#f64[STARTED] = now;
    Atomics.store(this.#i32, TAG, tag);
    Atomics.store(this.#i32, KEY, key | 0);
    Atomics.store(this.#i32, TICKET, ticket | 0);
    Atomics.store(this.#i32, STATE, 1);
  }

  /** Worker side: the running record finished at epoch ms `now` (for busy time). */
  end(now?: number): void {
    this.#f64[HANDLED] = (this.#f64[HANDLED] ?? 0) + 1;
    if (now !== undefined) this.#f64[BUSY] = (this.#f64[BUSY] ?? 0) + (now - this.#f64[STARTED]!);
    Atomics.store(this.#i32, STATE, 0);
    Atomics.store(this.#i32, YIELD, 0);
  }

  /** Worker side: a ticketed record was claimed and starts. */
  countStart(): void {
    Atomics.add(this.#i32, STARTS, 1);
  }

  /** Worker side: `delta` more (or fewer) records wait behind a busy key. */
  countBlocked(delta: number): void {
    Atomics.add(this.#i32, BLOCKED, delta);
  }

  /** Main side: records the worker holds behind a busy key (they cannot start yet). */
  get blocked(): number {
    return Math.max(0, Atomics.load(this.#i32, BLOCKED));
  }

  /** Main side: ticketed records started so far (a wrapping int32 counter). */
  get starts(): number {
    return Atomics.load(this.#i32, STARTS);
  }

  /** Worker side: the ring loop turned at epoch ms `now` (its event loop is free). */
  loopTurned(now: number): void {
    this.#f64[LOOP] = now;
  }

  /** Main side: asks the worker to yield at its next yield point. */
  requestYield(): void {
    Atomics.store(this.#i32, YIELD, 1);
  }

  /** Worker side: whether a yield was requested (cheap; called from every yield point). */
  get yieldRequested(): boolean {
    return Atomics.load(this.#i32, YIELD) === 1;
  }

  /** Worker side: code yielded; clears the yield request and counts the yield. */
  clearYield(): void {
    this.#f64[YIELDS] = (this.#f64[YIELDS] ?? 0) + 1;
    Atomics.store(this.#i32, YIELD, 0);
  }

  /** Either side: what the block says now. */
  snapshot(): ControlSnapshot {
    return {
      running: Atomics.load(this.#i32, STATE) === 1,
      tag: Atomics.load(this.#i32, TAG),
      key: Atomics.load(this.#i32, KEY) >>> 0,
      ticket: Atomics.load(this.#i32, TICKET) >>> 0,
      startedAt: this.#f64[STARTED] ?? 0,
      handled: this.#f64[HANDLED] ?? 0,
      yields: this.#f64[YIELDS] ?? 0,
      busyMs: this.#f64[BUSY] ?? 0,
      loopAt: this.#f64[LOOP] ?? 0,
      yieldRequested: Atomics.load(this.#i32, YIELD) === 1,
    };
  }
}
