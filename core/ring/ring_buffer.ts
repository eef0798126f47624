/**
 * The single-producer/single-consumer ring buffer over a SharedArrayBuffer that carries
 * Stage's messages between the main thread and Web Workers.
 *
 * @module
 */

/**
 * Wire layout of a ring's SharedArrayBuffer, shared by both threads.
 *
 * The buffer starts with a {@linkcode RING_LAYOUT.headerBytes}-byte control header of Int32
 * slots, each on its own 64-byte cache line so the two threads do not false-share:
 * `head` (read position, written by the reader), `tail` (write position, written by the
 * writer), `readerSleeping` and `writerWaiting` (wake-up flags). Positions are uint32 byte
 * counters that only grow (modulo 2^32); `tail - head` is the number of bytes in use.
 * The data area of `capacity` bytes follows the header. Each record there is a 16-byte
 * header `[bodyLength u32][tag u32][a u32][b u32]` followed by the body, padded to 8
 * bytes. A `bodyLength` of {@linkcode RING_LAYOUT.wrapMarker} means "continue at offset 0".
 *
 * @example Reading the write position of a ring
 * ```ts
 * import { RING_LAYOUT, RingBuffer } from "./ring_buffer.ts";
 * const ring = RingBuffer.create(4096);
 * ring.tryWrite(1, 0, 0);
 * const control = new Int32Array(ring.buffer, 0, RING_LAYOUT.headerBytes / 4);
 * if (control[RING_LAYOUT.tailSlot] !== 16) throw new Error("unexpected layout");
 * ```
 */
export const RING_LAYOUT = Object.freeze({
  /** Bytes before the data area. */
  headerBytes: 256,
  /** Int32 index of the read position. */
  headSlot: 0,
  /** Int32 index of the write position. */
  tailSlot: 16,
  /** Int32 index of the flag the reader sets before sleeping on `tailSlot`. */
  readerSleepingSlot: 32,
  /** Int32 index of the flag the writer sets before sleeping on `headSlot`. */
  writerWaitingSlot: 48,
  /** Bytes of a record header. */
  recordHeaderBytes: 16,
  /** `bodyLength` value that marks the rest of the data area as skipped. */
  wrapMarker: 0xFFFFFFFF,
  /** Smallest data area. */
  minCapacity: 4096,
  /** Largest data area (1 GiB). */
  maxCapacity: 0x40000000,
  /** Data area of {@linkcode RingBuffer.create} when no capacity is given (1 MiB). */
  defaultCapacity: 0x100000,
});

const HEADER_BYTES = RING_LAYOUT.headerBytes;
const HEAD = RING_LAYOUT.headSlot;
const TAIL = RING_LAYOUT.tailSlot;
const READER_SLEEPING = RING_LAYOUT.readerSleepingSlot;
const WRITER_WAITING = RING_LAYOUT.writerWaitingSlot;
const RECORD_HEADER = RING_LAYOUT.recordHeaderBytes;
const WRAP = RING_LAYOUT.wrapMarker;
// Pooled bodies are carved from slabs of this size, like Node's Buffer pool.
const SLAB_BYTES = 8192;
const POOLED_BODY_MAX = 1024;

/** Options of a {@linkcode RingBuffer} handle (local to the thread, not shared). */
export interface RingBufferOptions {
  /**
   * Copy bodies of up to 1 KiB into shared 8 KiB slabs instead of one ArrayBuffer each
   * (default `false`). Reading is then several times faster, because allocating an
   * ArrayBuffer dominates the cost of a small record, but a body's `buffer` is shared
   * with its neighbours: use `byteOffset`/`byteLength`, do not transfer `body.buffer`,
   * and copy a body you keep for long (it pins its whole slab).
   */
  pooledBodies?: boolean;
  /**
   * Writer side: do not wake a sleeping reader from `tryWrite`; the writer calls
   * {@linkcode RingBuffer.wakeReader} itself, e.g. once per batch (default `false`).
   * Waking costs tens of microseconds, so one wake-up per batch instead of one per
   * record matters under load.
   */
  manualWake?: boolean;
  /**
   * This side's end of a `MessageChannel` whose other end the other thread's
   * `RingBuffer` holds. With it, a sleeping side is woken by a message on the port
   * instead of `Atomics.notify`: a port message always wakes the receiving event
   * loop, whereas in Deno a cross-thread `Atomics.notify` may leave an idle
   * `waitAsync` waiter asleep until something else wakes its loop. It is also
   * cheaper. Close it with {@linkcode RingBuffer.close}.
   */
  doorbell?: MessagePort;
}

/** Longest sleep of an Atomics-mode wait before re-checking (see #parkOnAtomics). */
const ATOMICS_POLL_MS = 20;

/** Doorbell message: records are available. */
const BELL_READABLE = 1;
/** Doorbell message: space is available. */
const BELL_WRITABLE = 2;

/** One record read from a ring. */
export interface RingRecord {
  /** Caller-defined uint32 kind of the record. */
  tag: number;
  /** Caller-defined uint32 value. */
  a: number;
  /** Caller-defined uint32 value. */
  b: number;
  /**
   * A copy of the body on a plain (non-shared) ArrayBuffer of its own, or a view of a
   * shared slab with {@linkcode RingBufferOptions.pooledBodies}.
   */
  body: Uint8Array<ArrayBuffer>;
}

/** Callback that receives each record of {@linkcode RingBuffer.drain}. */
export type RecordHandler = (
  tag: number,
  a: number,
  b: number,
  body: Uint8Array<ArrayBuffer>,
) => void;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function isValidCapacity(capacity: number): boolean {
  return isPowerOfTwo(capacity) && capacity >= RING_LAYOUT.minCapacity &&
    capacity <= RING_LAYOUT.maxCapacity;
}

const CAPACITY_RANGE =
  `a power of two between ${RING_LAYOUT.minCapacity} and ${RING_LAYOUT.maxCapacity}`;

function checkUint32(name: string, value: number): void {
  if (value >>> 0 !== value) {
    throw new RangeError(`Record ${name} ${value} is not a uint32 (0..4294967295)`);
  }
}

/** Bytes a record with a body of `bodyLength` bytes takes in the data area. */
function recordBytes(bodyLength: number): number {
  return RECORD_HEADER + ((bodyLength + 7) & ~7);
}

/**
 * A single-producer/single-consumer ring of tagged binary records over a
 * SharedArrayBuffer, with Atomics-based wake-ups.
 *
 * One thread writes (`tryWrite`, `waitWritable`), one thread reads (`read`, `drain`,
 * `waitReadable`); both may be the same thread. The writer publishes each record with
 * `Atomics.store` on the tail after plain stores of its bytes, and the reader publishes
 * consumed space with `Atomics.store` on the head, which is a correct hand-off in the JS
 * memory model because Atomics are sequentially consistent. See {@linkcode RING_LAYOUT}
 * for the wire layout.
 *
 * @example Writing and reading a record
 * ```ts
 * import { RingBuffer } from "./ring_buffer.ts";
 * const ring = RingBuffer.create(4096);
 * ring.tryWrite(7, 1, 2, new TextEncoder().encode("hello"));
 * const record = ring.read();
 * if (record === undefined || new TextDecoder().decode(record.body) !== "hello") {
 *   throw new Error("round trip failed");
 * }
 * ```
 */
export class RingBuffer {
  /** The shared memory of the ring; post it to the other thread to attach there. */
  readonly buffer: SharedArrayBuffer;
  /** Bytes of the data area (a power of two). */
  readonly capacity: number;
  /** Largest body, in bytes, that {@linkcode RingBuffer.tryWrite} accepts. */
  readonly maxBodyLength: number;

  #mask: number;
  #control: Int32Array<SharedArrayBuffer>;
  #bytes: Uint8Array<SharedArrayBuffer>;
  #words: Uint32Array<SharedArrayBuffer>;
  // Last head seen by the writer; head only grows, so a stale value only underestimates
  // free space and saves the writer a load of the reader's cache line per record.
  #headSeen: number;
  #pooled: boolean;
  #autoWake: boolean;
  #slab: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #slabUsed = 0;
  #readWaiters = 0;
  #writeWaiters = 0;
  #doorbell: MessagePort | undefined;
  /** Resolvers of waits parked on the doorbell, by the message that ends them. */
  #bellWaiters: Record<number, (() => void)[]> = { [BELL_READABLE]: [], [BELL_WRITABLE]: [] };

  /**
   * Creates a ring with a fresh SharedArrayBuffer.
   *
   * @param capacity Bytes of the data area: a power of two from 4096 to 1 GiB (default 1 MiB).
   * @param options Options of this handle.
   * @throws {RangeError} If `capacity` is out of range or not a power of two.
   */
  static create(
    capacity: number = RING_LAYOUT.defaultCapacity,
    options?: RingBufferOptions,
  ): RingBuffer {
    if (!isValidCapacity(capacity)) {
      throw new RangeError(`Ring capacity ${capacity} is not ${CAPACITY_RANGE}`);
    }
    return new RingBuffer(new SharedArrayBuffer(HEADER_BYTES + capacity), options);
  }

  /**
   * Attaches to the ring stored in `buffer` (typically received from the other thread).
   *
   * @param buffer The ring's memory, as returned by {@linkcode RingBuffer.buffer}.
   * @param options Options of this handle.
   * @throws {TypeError} If `buffer` is not a SharedArrayBuffer.
   * @throws {RangeError} If its size is not a header plus a power-of-two data area.
   */
  constructor(buffer: SharedArrayBuffer, options?: RingBufferOptions) {
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError(
        `RingBuffer needs a SharedArrayBuffer, got ${Object.prototype.toString.call(buffer)}`,
      );
    }
    const capacity = buffer.byteLength - HEADER_BYTES;
    if (!isValidCapacity(capacity)) {
      throw new RangeError(
        `SharedArrayBuffer of ${buffer.byteLength} bytes is not a ring: its data area after the ${HEADER_BYTES}-byte header must be ${CAPACITY_RANGE} bytes`,
      );
    }
    this.buffer = buffer;
    this.capacity = capacity;
    this.maxBodyLength = capacity / 4 - RECORD_HEADER;
    this.#mask = capacity - 1;
    this.#control = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES, capacity);
    this.#words = new Uint32Array(buffer, HEADER_BYTES, capacity / 4);
    this.#headSeen = Atomics.load(this.#control, HEAD) >>> 0;
    this.#pooled = options?.pooledBodies ?? false;
    this.#autoWake = !(options?.manualWake ?? false);
    const doorbell = options?.doorbell;
    if (doorbell !== undefined) {
      this.#doorbell = doorbell;
      doorbell.onmessage = (event: MessageEvent<number>) => {
        for (const wake of this.#bellWaiters[event.data]?.splice(0) ?? []) wake();
      };
    }
  }

  /** Bytes of the data area currently holding unread records (including padding). */
  get usedBytes(): number {
    return (Atomics.load(this.#control, TAIL) - Atomics.load(this.#control, HEAD)) >>> 0;
  }

  /**
   * Appends one record if it fits; never blocks. Writer side only.
   *
   * @param tag Caller-defined uint32.
   * @param a Caller-defined uint32.
   * @param b Caller-defined uint32.
   * @param body Bytes of the body (optional).
   * @param body2 Bytes appended after `body` in the same record (optional).
   * @returns `false` when there is not enough free space (nothing is written).
   * @throws {RangeError} If the bodies together exceed {@linkcode RingBuffer.maxBodyLength}
   *   or `tag`, `a` or `b` is not a uint32.
   */
  tryWrite(tag: number, a: number, b: number, body?: Uint8Array, body2?: Uint8Array): boolean {
    const length1 = body === undefined ? 0 : body.byteLength;
    const length = body2 === undefined ? length1 : length1 + body2.byteLength;
    if (length > this.maxBodyLength) {
      throw new RangeError(
        `Record body of ${length} bytes exceeds the ring's maximum of ${this.maxBodyLength}`,
      );
    }
    checkUint32("tag", tag);
    checkUint32("a", a);
    checkUint32("b", b);
    const control = this.#control;
    const capacity = this.capacity;
    const tail = Atomics.load(control, TAIL) >>> 0;
    const size = recordBytes(length);
    let offset = tail & this.#mask;
    const toEnd = capacity - offset;
    const skip = toEnd < size ? toEnd : 0;
    if (capacity - ((tail - this.#headSeen) >>> 0) < skip + size) {
      this.#headSeen = Atomics.load(control, HEAD) >>> 0;
      if (capacity - ((tail - this.#headSeen) >>> 0) < skip + size) return false;
    }
    const words = this.#words;
    if (skip !== 0) {
      words[offset >>> 2] = WRAP;
      offset = 0;
    }
    const w = offset >>> 2;
    words[w] = length;
    words[w + 1] = tag;
    words[w + 2] = a;
    words[w + 3] = b;
    if (length1 !== 0) this.#bytes.set(body!, offset + RECORD_HEADER);
    if (length !== length1) this.#bytes.set(body2!, offset + RECORD_HEADER + length1);
    Atomics.store(control, TAIL, tail + skip + size);
    if (this.#autoWake) this.wakeReader();
    return true;
  }

  /** Whether `tryWrite` leaves waking the reader to the writer ({@linkcode RingBufferOptions.manualWake}). */
  get manualWake(): boolean {
    return !this.#autoWake;
  }

  /**
   * Wakes the reader if it sleeps (writer side). `tryWrite` does this itself unless
   * the ring was attached with `manualWake`; then it must follow a batch of writes.
   * Safe at any time: the reader re-checks for records after raising its flag.
   */
  wakeReader(): void {
    const control = this.#control;
    if (Atomics.load(control, READER_SLEEPING) !== 0) {
      Atomics.store(control, READER_SLEEPING, 0);
      if (this.#doorbell !== undefined) this.#doorbell.postMessage(BELL_READABLE);
      else Atomics.notify(control, TAIL);
    }
  }

  /**
   * Takes the oldest record, if any. Reader side only.
   *
   * @returns The record with a copied body, or `undefined` when the ring is empty.
   * @throws {RangeError} If the ring holds a corrupt record header.
   */
  read(): RingRecord | undefined {
    let record: RingRecord | undefined;
    this.drain((tag, a, b, body) => {
      record = { tag, a, b, body };
    }, 1);
    return record;
  }

  /**
   * Reads up to `max` records and passes each to `handler`. Reader side only.
   *
   * Each record is released (its space handed back to the writer) before `handler` sees
   * it, so a throwing handler loses only its own record and leaves the ring consistent.
   *
   * @param handler Receives each record; `body` is a copy on a plain ArrayBuffer (see
   *   {@linkcode RingBufferOptions.pooledBodies}).
   * @param max Most records to read (default: all that are available).
   * @returns The number of records read.
   * @throws {RangeError} If the ring holds a corrupt record header.
   */
  drain(handler: RecordHandler, max: number = Infinity): number {
    const control = this.#control;
    const words = this.#words;
    const bytes = this.#bytes;
    let head = Atomics.load(control, HEAD) >>> 0;
    let tail = Atomics.load(control, TAIL) >>> 0;
    let count = 0;
    while (count < max) {
      if (head === tail) {
        tail = Atomics.load(control, TAIL) >>> 0;
        if (head === tail) break;
      }
      let offset = head & this.#mask;
      let length = words[offset >>> 2]!;
      if (length === WRAP) {
        head = (head + this.capacity - offset) >>> 0;
        offset = 0;
        length = words[0]!;
      }
      if (length > this.maxBodyLength) {
        throw new RangeError(
          `Corrupt ring record at position ${head}: body length ${length} exceeds the maximum of ${this.maxBodyLength}`,
        );
      }
      const w = offset >>> 2;
      const tag = words[w + 1]!;
      const a = words[w + 2]!;
      const b = words[w + 3]!;
      const start = offset + RECORD_HEADER;
      const body = this.#pooled && length <= POOLED_BODY_MAX
        ? this.#pooledCopy(start, length)
        : bytes.slice(start, start + length);
      head = (head + recordBytes(length)) >>> 0;
      Atomics.store(control, HEAD, head);
      if (Atomics.load(control, WRITER_WAITING) !== 0) {
        Atomics.store(control, WRITER_WAITING, 0);
        if (this.#doorbell !== undefined) this.#doorbell.postMessage(BELL_WRITABLE);
        else Atomics.notify(control, HEAD);
      }
      count++;
      handler(tag, a, b, body);
    }
    return count;
  }

  /**
   * Waits until a record can be read.
   *
   * @param timeoutMs Longest wait in milliseconds (default: no limit).
   * @param signal Ends the wait early (resolving `false`) when aborted.
   * @returns `true` as soon as a record is available (at once if one is), `false` on
   *   timeout or abort.
   */
  waitReadable(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#readable()) return Promise.resolve(true);
    return this.#wait(TAIL, READER_SLEEPING, true, () => this.#readable(), timeoutMs, signal);
  }

  /**
   * Waits until a record with a body of `bodyLength` bytes would fit.
   *
   * @param bodyLength Body bytes of the record to write.
   * @param timeoutMs Longest wait in milliseconds (default: no limit).
   * @param signal Ends the wait early (resolving `false`) when aborted.
   * @returns `true` once the record fits (at once if it does), `false` on timeout or abort.
   * @throws {RangeError} If `bodyLength` is negative, not an integer or exceeds
   *   {@linkcode RingBuffer.maxBodyLength}.
   */
  waitWritable(bodyLength: number, timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (!(Number.isInteger(bodyLength) && bodyLength >= 0)) {
      throw new RangeError(`Record body length ${bodyLength} is not a non-negative integer`);
    }
    if (bodyLength > this.maxBodyLength) {
      throw new RangeError(
        `Record body of ${bodyLength} bytes exceeds the ring's maximum of ${this.maxBodyLength}`,
      );
    }
    const fits = () => this.#fits(bodyLength);
    if (fits()) return Promise.resolve(true);
    return this.#wait(HEAD, WRITER_WAITING, false, fits, timeoutMs, signal);
  }

  #pooledCopy(start: number, length: number): Uint8Array<ArrayBuffer> {
    let slab = this.#slab;
    // A zero length also means the slab was detached (someone transferred a body's buffer).
    if (this.#slabUsed + length > slab.byteLength || slab.byteLength === 0) {
      slab = this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const offset = this.#slabUsed;
    slab.set(this.#bytes.subarray(start, start + length), offset);
    // Keep bodies 8-byte aligned so callers can lay wider typed arrays over them.
    this.#slabUsed = offset + ((length + 7) & ~7);
    return new Uint8Array(slab.buffer, offset, length);
  }

  #readable(): boolean {
    return Atomics.load(this.#control, HEAD) !== Atomics.load(this.#control, TAIL);
  }

  #fits(bodyLength: number): boolean {
    const tail = Atomics.load(this.#control, TAIL) >>> 0;
    const head = Atomics.load(this.#control, HEAD) >>> 0;
    const size = recordBytes(bodyLength);
    const toEnd = this.capacity - (tail & this.#mask);
    const needed = (toEnd < size ? toEnd : 0) + size;
    return this.capacity - ((tail - head) >>> 0) >= needed;
  }

  // Sleeps until `ready()`. Raising `flag` before re-checking `ready()` pairs with the
  // other side's "publish, then check flag" (both sequentially consistent), so either we
  // see the new position or the other side sees the flag and wakes us; only how we park
  // differs between a doorbell and Atomics.
  async #wait(
    slot: number,
    flag: number,
    reader: boolean,
    ready: () => boolean,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    if (signal?.aborted) return false;
    const control = this.#control;
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    if (reader) this.#readWaiters++;
    else this.#writeWaiters++;
    try {
      for (;;) {
        Atomics.store(control, flag, 1);
        const seen = Atomics.load(control, slot);
        if (ready()) return true;
        if (signal?.aborted || this.#closed) return false;
        const remaining = deadline - performance.now();
        if (remaining <= 0) return false;
        if (this.#doorbell !== undefined) {
          await this.#parkOnDoorbell(reader ? BELL_READABLE : BELL_WRITABLE, remaining, signal);
        } else {
          await this.#parkOnAtomics(slot, seen, remaining, signal);
        }
      }
    } finally {
      const others = reader ? --this.#readWaiters : --this.#writeWaiters;
      if (others === 0) Atomics.store(control, flag, 0);
    }
  }

  /** Parks until the other side rings `bell`, the time is up, or `signal` aborts. */
  #parkOnDoorbell(bell: number, ms: number, signal: AbortSignal | undefined): Promise<void> {
    const waiters = this.#bellWaiters[bell]!;
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        const index = waiters.indexOf(done);
        if (index >= 0) waiters.splice(index, 1);
        resolve();
      };
      waiters.push(done);
      if (ms !== Infinity) timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Parks on `slot` while it still holds `seen`. Deno may leave an idle event loop
   * asleep after a cross-thread notify, so the wait is also bounded by a real timer,
   * which always wakes the loop: a lost wake-up costs at most ATOMICS_POLL_MS (a
   * doorbell avoids both). Only this side sleeps on `slot`, so an abort notifies it.
   */
  async #parkOnAtomics(
    slot: number,
    seen: number,
    ms: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const control = this.#control;
    const slice = Math.min(ms, ATOMICS_POLL_MS);
    const result = Atomics.waitAsync(control, slot, seen, slice);
    if (!result.async) return;
    const onAbort = () => Atomics.notify(control, slot);
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      result.value,
      new Promise((resolve) => timer = setTimeout(resolve, slice + 1)),
    ]);
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }

  /**
   * Closes this side's doorbell port (if any) and ends its pending waits with
   * `false`. The shared memory itself needs no closing.
   */
  close(): void {
    this.#closed = true;
    if (this.#doorbell !== undefined) {
      this.#doorbell.onmessage = null;
      this.#doorbell.close();
    }
    for (const list of Object.values(this.#bellWaiters)) for (const wake of list.splice(0)) wake();
  }

  #closed = false;
}
