/**
 * Process-wide shared variables in one SharedArrayBuffer (what `stage.shared`
 * is built on). Every worker attaches to the same table; a variable is created
 * by the first `open(name, initial)` anywhere and found by name afterwards.
 *
 * Reads are lock-free snapshots: each variable has two buffers; a writer fills
 * the inactive one and then flips the active index, so a reader copying the
 * active buffer is never torn. A version counter, bumped before every write,
 * tells a reader that two writes overlapped its copy (the second may have
 * reused its buffer); it then simply copies again. Readers never wait for a
 * writer's lock. Writers (set/update) serialise on a per-variable lock built on
 * `Atomics.compareExchange` + `Atomics.wait` (workers may block; the main
 * thread only reads).
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";

/** Sizes of a {@link SharedTable}. */
export interface SharedTableLayout {
  /** Number of variables the table can hold. */
  slots: number;
  /** Largest serialized value of one variable, in bytes. */
  valueBytes: number;
}

/** Default layout: 256 variables of up to 64 KiB each (32 MiB of shared memory). */
export const defaultSharedTableLayout: SharedTableLayout = { slots: 256, valueBytes: 64 * 1024 };

const NAME_BYTES = 128;
// Table header (Int32 slots): [tableLock, used, slots, valueBytes]
const TABLE_LOCK = 0;
const USED = 1;
const HEADER_BYTES = 16;
// Slot header (Int32 slots): [version, active, lock, nameLength, length0, length1]
const VERSION = 0;
const ACTIVE = 1;
const LOCK = 2;
const NAME_LENGTH = 3;
const LENGTH0 = 4;
const SLOT_HEADER_BYTES = 32;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function slotBytes(valueBytes: number): number {
  return SLOT_HEADER_BYTES + NAME_BYTES + 2 * ((valueBytes + 7) & ~7);
}

/** Raised when a value does not fit its variable or the table is full. */
export class SharedTableFullError extends RangeError {
  override name = "SharedTableFullError";
}

/** Acquires a lock word (0 free, 1 held, 2 held with waiters). Blocks: workers only. */
function lock(words: Int32Array, index: number): void {
  let state = Atomics.compareExchange(words, index, 0, 1);
  if (state === 0) return;
  do {
    if (state === 2 || Atomics.compareExchange(words, index, 1, 2) !== 0) {
      Atomics.wait(words, index, 2, 50);
    }
    state = Atomics.compareExchange(words, index, 0, 2);
  } while (state !== 0);
}

function unlock(words: Int32Array, index: number): void {
  if (Atomics.sub(words, index, 1) !== 1) {
    Atomics.store(words, index, 0);
    Atomics.notify(words, index, 1);
  }
}

/** One shared variable of a {@link SharedTable}. */
export class SharedVariable<T> {
  readonly name: string;
  #words: Int32Array;
  #bytes: Uint8Array;
  #data: [number, number];
  #capacity: number;

  /** @internal use {@link SharedTable.open} */
  constructor(
    name: string,
    words: Int32Array,
    bytes: Uint8Array,
    data: [number, number],
    capacity: number,
  ) {
    this.name = name;
    this.#words = words;
    this.#bytes = bytes;
    this.#data = data;
    this.#capacity = capacity;
  }

  /** A consistent snapshot of the value (lock-free; never torn). */
  get(): T {
    const words = this.#words;
    for (;;) {
      const before = Atomics.load(words, VERSION);
      const active = Atomics.load(words, ACTIVE);
      const length = Atomics.load(words, LENGTH0 + active);
      const start = this.#data[active]!;
      const copy = this.#bytes.slice(start, start + length);
      // Two writes since `before` may have rewritten the buffer we copied.
      if (Atomics.load(words, VERSION) - before < 2) return deserialize(copy) as T;
    }
  }

  /**
   * Stores a new value.
   *
   * @throws SharedTableFullError when the serialized value exceeds the table's value size
   */
  set(value: T): T {
    const encoded = this.#encode(value);
    lock(this.#words, LOCK);
    try {
      this.#publish(encoded);
    } finally {
      unlock(this.#words, LOCK);
    }
    return value;
  }

  /**
   * Runs `fn(current)` under the variable's lock, stores and returns its result
   * (an atomic read-modify-write across workers). `fn` must be synchronous.
   */
  update(fn: (current: T) => T): T {
    lock(this.#words, LOCK);
    try {
      const next = fn(this.get());
      if (next !== null && typeof (next as { then?: unknown })?.then === "function") {
        throw new TypeError(`shared("${this.name}").update: the function must be synchronous`);
      }
      this.#publish(this.#encode(next));
      return next;
    } finally {
      unlock(this.#words, LOCK);
    }
  }

  #encode(value: T): Uint8Array {
    const encoded = serialize(value);
    if (encoded.length > this.#capacity) {
      throw new SharedTableFullError(
        `Shared variable "${this.name}": value of ${encoded.length} bytes exceeds the limit of ${this.#capacity}`,
      );
    }
    return encoded;
  }

  /** Writes into the inactive buffer, then flips. Caller holds the lock. */
  #publish(encoded: Uint8Array): void {
    const words = this.#words;
    const inactive = 1 - Atomics.load(words, ACTIVE);
    Atomics.add(words, VERSION, 1);
    this.#bytes.set(encoded, this.#data[inactive]!);
    Atomics.store(words, LENGTH0 + inactive, encoded.length);
    Atomics.store(words, ACTIVE, inactive);
  }
}

/**
 * The table of shared variables of one process.
 *
 * @example
 * ```ts
 * import { SharedTable } from "./shared_table.ts";
 * const table = SharedTable.create({ slots: 4, valueBytes: 256 });
 * const hits = table.open("hits", 0);
 * hits.update((n) => n + 1);
 * if (new SharedTable(table.buffer).open("hits", 99).get() !== 1) throw new Error("not shared");
 * ```
 */
export class SharedTable {
  readonly buffer: SharedArrayBuffer;
  readonly layout: SharedTableLayout;
  #header: Int32Array;
  #cache = new Map<string, SharedVariable<unknown>>();

  /** Allocates a table. */
  static create(layout: SharedTableLayout = defaultSharedTableLayout): SharedTable {
    if (!Number.isInteger(layout.slots) || layout.slots < 1) {
      throw new RangeError(`Shared table slots must be a positive integer; got ${layout.slots}`);
    }
    if (!Number.isInteger(layout.valueBytes) || layout.valueBytes < 16) {
      throw new RangeError(`Shared value size must be an integer ≥ 16; got ${layout.valueBytes}`);
    }
    const buffer = new SharedArrayBuffer(
      HEADER_BYTES + layout.slots * slotBytes(layout.valueBytes),
    );
    const header = new Int32Array(buffer, 0, 4);
    header[2] = layout.slots;
    header[3] = layout.valueBytes;
    return new SharedTable(buffer);
  }

  /** Attaches to a table created elsewhere. */
  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, 4);
    this.layout = { slots: this.#header[2]!, valueBytes: this.#header[3]! };
  }

  /** Number of variables created so far. */
  get used(): number {
    return Atomics.load(this.#header, USED);
  }

  /**
   * The variable `name`, created with `initial` if nobody created it yet.
   *
   * @throws TypeError for an empty or over-long name
   * @throws SharedTableFullError when the table is full or `initial` is too large
   */
  open<T>(name: string, initial: T): SharedVariable<T> {
    const cached = this.#cache.get(name);
    if (cached !== undefined) return cached as SharedVariable<T>;
    const nameBytes = encoder.encode(name);
    if (nameBytes.length === 0 || nameBytes.length > NAME_BYTES) {
      throw new TypeError(`Shared variable name must be 1..${NAME_BYTES} bytes; got "${name}"`);
    }
    lock(this.#header, TABLE_LOCK);
    let variable: SharedVariable<T>;
    try {
      const used = Atomics.load(this.#header, USED);
      for (let index = 0; index < used; index++) {
        if (this.#nameAt(index) === name) {
          variable = this.#variable<T>(index, name);
          this.#cache.set(name, variable as SharedVariable<unknown>);
          return variable;
        }
      }
      if (used >= this.layout.slots) {
        throw new SharedTableFullError(
          `Cannot create shared variable "${name}": all ${this.layout.slots} slots are in use`,
        );
      }
      variable = this.#variable<T>(used, name);
      variable.set(initial); // validates the size before the slot is claimed
      const words = this.#slotWords(used);
      Atomics.store(words, NAME_LENGTH, nameBytes.length);
      new Uint8Array(this.buffer, this.#slotOffset(used) + SLOT_HEADER_BYTES, NAME_BYTES).set(
        nameBytes,
      );
      Atomics.store(this.#header, USED, used + 1);
    } finally {
      unlock(this.#header, TABLE_LOCK);
    }
    this.#cache.set(name, variable as SharedVariable<unknown>);
    return variable;
  }

  #slotOffset(index: number): number {
    return HEADER_BYTES + index * slotBytes(this.layout.valueBytes);
  }

  #slotWords(index: number): Int32Array {
    return new Int32Array(this.buffer, this.#slotOffset(index), SLOT_HEADER_BYTES / 4);
  }

  #nameAt(index: number): string {
    const length = Atomics.load(this.#slotWords(index), NAME_LENGTH);
    const start = this.#slotOffset(index) + SLOT_HEADER_BYTES;
    return decoder.decode(new Uint8Array(this.buffer, start, length).slice());
  }

  #variable<T>(index: number, name: string): SharedVariable<T> {
    const offset = this.#slotOffset(index);
    const stride = (this.layout.valueBytes + 7) & ~7;
    const first = offset + SLOT_HEADER_BYTES + NAME_BYTES;
    return new SharedVariable<T>(
      name,
      this.#slotWords(index),
      new Uint8Array(this.buffer),
      [first, first + stride],
      this.layout.valueBytes,
    );
  }
}
