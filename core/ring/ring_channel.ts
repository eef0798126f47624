/**
 * The message layer over {@linkcode RingBuffer}: a sender that never blocks (queueing and
 * fragmenting as needed) and a receiver that reassembles fragments.
 *
 * @module
 */

import { type RecordHandler, RingBuffer } from "./ring_buffer.ts";

/** Tag bit marking a fragment that more fragments of the same record follow. */
const MORE_FRAGMENTS = 0x80000000;
const TAG_MASK = 0x7FFFFFFF;
const EMPTY = new Uint8Array(0);

interface QueuedRecord {
  tag: number;
  a: number;
  b: number;
  body: Uint8Array;
}

function checkUint32(name: string, value: number): void {
  if (value >>> 0 !== value) {
    throw new RangeError(`Record ${name} ${value} is not a uint32 (0..4294967295)`);
  }
}

/** The bytes `[start, end)` of the concatenation of `first` and `second`, as two views. */
function pieces(
  first: Uint8Array,
  second: Uint8Array,
  start: number,
  end: number,
): [Uint8Array, Uint8Array] {
  const split = first.byteLength;
  return [
    start < split ? first.subarray(start, Math.min(end, split)) : EMPTY,
    end > split ? second.subarray(Math.max(start, split) - split, end - split) : EMPTY,
  ];
}

/** A copy of the bytes `[start, end)` of the concatenation of `first` and `second`. */
function copyRange(first: Uint8Array, second: Uint8Array, start: number, end: number): Uint8Array {
  const [part1, part2] = pieces(first, second, start, end);
  const copy = new Uint8Array(end - start);
  copy.set(part1, 0);
  copy.set(part2, part1.byteLength);
  return copy;
}

/**
 * Writing end of a ring that never blocks and never fails for lack of space.
 *
 * Records that do not fit go to an in-memory overflow queue that a background loop
 * flushes, in order, as soon as the reader frees space. Bodies larger than the ring's
 * {@linkcode RingBuffer.maxBodyLength} are split into fragments (tag bit 0x80000000 set
 * on all but the last) that {@linkcode RingReceiver} reassembles. Use one sender per ring.
 *
 * @example Sending a record
 * ```ts
 * import { RingBuffer } from "./ring_buffer.ts";
 * import { RingReceiver, RingSender } from "./ring_channel.ts";
 * const ring = RingBuffer.create(65536); // maxBodyLength 16368
 * using sender = new RingSender(ring);
 * sender.send(1, 2, 3, new Uint8Array(40_000)); // sent as three fragments
 * let length = 0;
 * new RingReceiver(ring).drain((_tag, _a, _b, body) => length = body.byteLength);
 * if (length !== 40_000) throw new Error("not reassembled");
 * ```
 */
export class RingSender {
  #ring: RingBuffer;
  #queue: QueuedRecord[] = [];
  #queueStart = 0;
  #queuedBytes = 0;
  #pumping = false;
  #closed = false;
  #abort = new AbortController();
  #flushWaiters: (() => void)[] = [];

  /**
   * Creates the writing end of `ring`.
   *
   * @param ring The ring to write to; no other writer may use it.
   */
  constructor(ring: RingBuffer) {
    this.#ring = ring;
  }

  /**
   * Wakes the reader now (for a ring attached with `manualWake`; harmless otherwise).
   * See {@linkcode RingSender.wakeSoon}.
   */
  wake(): void {
    this.#wakeScheduled = false;
    this.#ring.wakeReader();
  }

  /**
   * Wakes the reader once, after the current task's synchronous work (a microtask),
   * however many records were sent meanwhile — one wake-up per batch. Use with a
   * ring attached with `manualWake`.
   */
  wakeSoon(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    queueMicrotask(this.#wakeTask);
  }

  #wakeScheduled = false;
  #wakeTask = () => this.wake();

  /** The ring this sender writes to. */
  get ring(): RingBuffer {
    return this.#ring;
  }

  /** Body bytes waiting in the overflow queue. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Ring records (fragments count one each) waiting in the overflow queue. */
  get queuedRecords(): number {
    return this.#queue.length - this.#queueStart;
  }

  /**
   * Sends one logical record; returns at once, queueing whatever does not fit.
   *
   * @param tag Caller-defined value in 0..0x7FFFFFFF (the top bit marks fragments).
   * @param a Caller-defined uint32.
   * @param b Caller-defined uint32.
   * @param body Bytes of the body (optional; copied if queued).
   * @param body2 Bytes appended after `body` (optional; copied if queued).
   * @throws {RangeError} If `tag` is not in 0..0x7FFFFFFF or `a` or `b` is not a uint32.
   * @throws {Error} If the sender is closed.
   */
  send(tag: number, a: number, b: number, body?: Uint8Array, body2?: Uint8Array): void {
    if (this.#closed) throw new Error("Cannot send on a closed RingSender");
    if ((tag & TAG_MASK) !== tag) {
      throw new RangeError(
        `Record tag ${tag} is outside 0..0x7FFFFFFF (the top bit marks fragments)`,
      );
    }
    checkUint32("a", a);
    checkUint32("b", b);
    const ring = this.#ring;
    const first = body ?? EMPTY;
    const second = body2 ?? EMPTY;
    const length = first.byteLength + second.byteLength;
    const max = ring.maxBodyLength;
    if (length <= max) {
      if (this.queuedRecords === 0 && ring.tryWrite(tag, a, b, first, second)) {
        if (ring.manualWake) this.wakeSoon();
        return;
      }
      this.#enqueue(tag, a, b, copyRange(first, second, 0, length));
    } else {
      let start = 0;
      if (this.queuedRecords === 0) {
        for (; start < length; start += max) {
          const end = Math.min(start + max, length);
          const fragmentTag = end < length ? (tag | MORE_FRAGMENTS) >>> 0 : tag;
          const [part1, part2] = pieces(first, second, start, end);
          if (!ring.tryWrite(fragmentTag, a, b, part1, part2)) break;
        }
      }
      for (; start < length; start += max) {
        const end = Math.min(start + max, length);
        const fragmentTag = end < length ? (tag | MORE_FRAGMENTS) >>> 0 : tag;
        this.#enqueue(fragmentTag, a, b, copyRange(first, second, start, end));
      }
      if (ring.manualWake) this.wakeSoon();
    }
    this.#flushQueue();
    if (this.queuedRecords !== 0 && !this.#pumping) void this.#pump();
  }

  /** Resolves once the overflow queue is empty (or discarded by {@linkcode close}). */
  flushed(): Promise<void> {
    if (this.queuedRecords === 0) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  /** Stops the background flush loop and discards the overflow queue. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queueStart = 0;
    this.#queuedBytes = 0;
    this.#abort.abort();
    this.#resolveFlushWaiters();
  }

  /** Same as {@linkcode close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #enqueue(tag: number, a: number, b: number, body: Uint8Array): void {
    this.#queue.push({ tag, a, b, body });
    this.#queuedBytes += body.byteLength;
  }

  // Writes queued records while they fit; returns whether the queue is now empty.
  #flushQueue(): boolean {
    const queue = this.#queue;
    let start = this.#queueStart;
    while (start < queue.length) {
      const record = queue[start]!;
      if (!this.#ring.tryWrite(record.tag, record.a, record.b, record.body)) break;
      this.#queuedBytes -= record.body.byteLength;
      start++;
    }
    if (start !== this.#queueStart) this.#ring.wakeReader();
    if (start === queue.length) {
      this.#queue = [];
      this.#queueStart = 0;
      this.#resolveFlushWaiters();
      return true;
    }
    // Compact now and then so a long-lived backlog does not keep its flushed prefix.
    if (start > 1024 && start * 2 > queue.length) {
      this.#queue = queue.slice(start);
      start = 0;
    }
    this.#queueStart = start;
    return false;
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (!this.#closed && !this.#flushQueue()) {
        const next = this.#queue[this.#queueStart]!;
        await this.#ring.waitWritable(next.body.byteLength, undefined, this.#abort.signal);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #resolveFlushWaiters(): void {
    const waiters = this.#flushWaiters;
    if (waiters.length === 0) return;
    this.#flushWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Reading end of a ring written by a {@linkcode RingSender}: reassembles fragmented
 * records so handlers see each logical record once, with its whole body.
 *
 * @example Draining what a sender wrote
 * ```ts
 * import { RingBuffer } from "./ring_buffer.ts";
 * import { RingReceiver, RingSender } from "./ring_channel.ts";
 * const ring = RingBuffer.create(4096);
 * using sender = new RingSender(ring);
 * sender.send(1, 0, 0);
 * sender.send(2, 0, 0);
 * const tags: number[] = [];
 * new RingReceiver(ring).drain((tag) => tags.push(tag));
 * if (tags.join() !== "1,2") throw new Error("lost records");
 * ```
 */
export class RingReceiver {
  #ring: RingBuffer;
  #handler: RecordHandler | undefined;
  #delivered = 0;
  #parts: Uint8Array<ArrayBuffer>[] = [];
  #partBytes = 0;
  #partTag = 0;
  #partA = 0;
  #partB = 0;
  #onRecord: RecordHandler;

  /**
   * Creates the reading end of `ring`.
   *
   * @param ring The ring to read from; no other reader may use it.
   */
  /** The ring this receiver reads from. */
  get ring(): RingBuffer {
    return this.#ring;
  }

  constructor(ring: RingBuffer) {
    this.#ring = ring;
    this.#onRecord = (tag, a, b, body) => this.#receive(tag, a, b, body);
  }

  /**
   * Reads available records and passes each logical record to `handler`.
   *
   * Fragments of a record whose last fragment has not arrived yet are consumed and kept
   * until a later call completes the record.
   *
   * @param handler Receives each logical record; `body` is a plain (non-shared) copy.
   * @param max Most logical records to deliver (default: all that are available).
   * @returns The number of logical records delivered.
   * @throws {Error} If the fragments of a record are interleaved with another record.
   */
  drain(handler: RecordHandler, max: number = Infinity): number {
    const outerHandler = this.#handler;
    const outerDelivered = this.#delivered;
    this.#handler = handler;
    this.#delivered = 0;
    try {
      while (this.#delivered < max) {
        const wanted = max - this.#delivered;
        // Each ring record yields at most one logical record, so `wanted` cannot overshoot.
        if (this.#ring.drain(this.#onRecord, wanted) < wanted) break;
      }
      return this.#delivered;
    } finally {
      this.#handler = outerHandler;
      this.#delivered = outerDelivered;
    }
  }

  /**
   * Waits until a ring record can be read (see {@linkcode RingBuffer.waitReadable}).
   *
   * @param timeoutMs Longest wait in milliseconds (default: no limit).
   * @param signal Ends the wait early (resolving `false`) when aborted.
   * @returns `true` when a record is available, `false` on timeout or abort.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    return this.#ring.waitReadable(timeoutMs, signal);
  }

  #receive(tag: number, a: number, b: number, body: Uint8Array<ArrayBuffer>): void {
    const parts = this.#parts;
    if ((tag & MORE_FRAGMENTS) !== 0) {
      tag &= TAG_MASK;
      if (parts.length === 0) {
        this.#partTag = tag;
        this.#partA = a;
        this.#partB = b;
      } else this.#checkContinuation(tag, a, b);
      parts.push(body);
      this.#partBytes += body.byteLength;
      return;
    }
    if (parts.length !== 0) {
      this.#checkContinuation(tag, a, b);
      const whole = new Uint8Array(this.#partBytes + body.byteLength);
      let offset = 0;
      for (const part of parts) {
        whole.set(part, offset);
        offset += part.byteLength;
      }
      whole.set(body, offset);
      this.#parts = [];
      this.#partBytes = 0;
      body = whole;
    }
    this.#delivered++;
    this.#handler!(tag, a, b, body);
  }

  #checkContinuation(tag: number, a: number, b: number): void {
    if (tag !== this.#partTag || a !== this.#partA || b !== this.#partB) {
      const expected = `(tag ${this.#partTag}, a ${this.#partA}, b ${this.#partB})`;
      this.#parts = [];
      this.#partBytes = 0;
      throw new Error(
        `Fragmented record ${expected} was interrupted by a record with tag ${tag}, a ${a}, b ${b}`,
      );
    }
  }
}
