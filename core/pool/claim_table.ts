/**
 * The claim table of one worker: a small shared Int32Array through which the
 * main thread and the worker agree, per dispatched record, on who owns it.
 *
 * The main thread offers a record in a slot (value = its generation); the
 * worker claims it when it starts running it (generation → −generation); the
 * main thread may revoke an unstarted record (generation → 0) to run it
 * elsewhere. Both sides use compare-and-swap, so exactly one of "started" and
 * "revoked" wins, and a revoked record is skipped by the worker when it finally
 * reads it.
 *
 * @module
 */

/**
 * Slots per worker: the most records a worker can have dispatched and not
 * finished at once — started ones awaiting I/O included, so it is large.
 */
export const CLAIM_SLOTS = 4095;

const BYTES = (CLAIM_SLOTS + 1) * 4;

/**
 * One worker's claim table; both threads hold a view of the same buffer.
 *
 * @example
 * ```ts
 * import { ClaimTable } from "./claim_table.ts";
 * const table = ClaimTable.create();
 * table.offer(3, 7);
 * if (!table.revoke(3, 7)) throw new Error("an unstarted record can be revoked");
 * if (table.claim(3, 7)) throw new Error("a revoked record must not start");
 * ```
 */
export class ClaimTable {
  readonly buffer: SharedArrayBuffer;
  #slots: Int32Array;

  /** Allocates a fresh table. */
  static create(): ClaimTable {
    return new ClaimTable(new SharedArrayBuffer(BYTES));
  }

  /** Attaches to an existing table. */
  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength < BYTES) {
      throw new RangeError(`Claim table of ${buffer.byteLength} bytes is smaller than ${BYTES}`);
    }
    this.buffer = buffer;
    this.#slots = new Int32Array(buffer, 0, CLAIM_SLOTS + 1);
  }

  /** Main side: slot `slot` now holds an unstarted record of `generation` (1..65535). */
  offer(slot: number, generation: number): void {
    Atomics.store(this.#slots, slot, generation);
  }

  /** Worker side: starts the record if it was not revoked; false = skip it. */
  claim(slot: number, generation: number): boolean {
    return Atomics.compareExchange(this.#slots, slot, generation, -generation) === generation;
  }

  /** Main side: takes back an unstarted record; false = it already started. */
  revoke(slot: number, generation: number): boolean {
    return Atomics.compareExchange(this.#slots, slot, generation, 0) === generation;
  }

  /** Main side: whether the record in `slot` has started. */
  started(slot: number, generation: number): boolean {
    return Atomics.load(this.#slots, slot) === -generation;
  }

  /** Main side: the slot is free again. */
  release(slot: number): void {
    Atomics.store(this.#slots, slot, 0);
  }
}
