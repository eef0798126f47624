/**
 * Which worker serves which key. A bound key (a socket) has a home worker
 * where its state lives; all its records go there, in order. New keys go to
 * the least-loaded eligible worker.
 *
 * @module
 */

/** Load figures the scheduler reads from the pool. */
export interface PoolLoad {
  readonly size: number;
  inFlight(worker: number): number;
}

/**
 * Key → home worker bindings with least-loaded placement.
 *
 * @example
 * ```ts
 * import { KeyScheduler } from "./key_scheduler.ts";
 * const scheduler = new KeyScheduler({ size: 2, inFlight: () => 0 });
 * const first = scheduler.bind(1);
 * const second = scheduler.bind(2);
 * if (first === second) throw new Error("keys were not spread");
 * ```
 */
export class KeyScheduler {
  #pool: PoolLoad;
  #home = new Map<number, number>();
  #bound: number[];

  constructor(pool: PoolLoad) {
    this.#pool = pool;
    this.#bound = new Array(pool.size).fill(0);
  }

  /**
   * Binds `key` to a worker and returns it: `worker` if given, else the
   * eligible worker with the fewest bound keys (ties: least work in flight).
   *
   * @throws RangeError when no worker is eligible
   */
  bind(key: number, eligible?: (worker: number) => boolean, worker?: number): number {
    const existing = this.#home.get(key);
    if (existing !== undefined) return existing;
    const chosen = worker ?? this.#leastLoaded(eligible);
    this.#home.set(key, chosen);
    this.#bound[chosen] = (this.#bound[chosen] ?? 0) + 1;
    return chosen;
  }

  /** The home worker of `key`, if bound. */
  workerOf(key: number): number | undefined {
    return this.#home.get(key);
  }

  /** Forgets `key`'s binding. */
  unbind(key: number): void {
    const worker = this.#home.get(key);
    if (worker === undefined) return;
    this.#home.delete(key);
    this.#bound[worker] = Math.max(0, (this.#bound[worker] ?? 0) - 1);
  }

  /** Forgets every key bound to `worker` and returns them. */
  unbindWorker(worker: number): number[] {
    const keys: number[] = [];
    for (const [key, home] of this.#home) if (home === worker) keys.push(key);
    for (const key of keys) this.#home.delete(key);
    this.#bound[worker] = 0;
    return keys;
  }

  /** Keys bound to `worker`. */
  boundTo(worker: number): number {
    return this.#bound[worker] ?? 0;
  }

  #leastLoaded(eligible?: (worker: number) => boolean): number {
    let best = -1;
    for (let worker = 0; worker < this.#pool.size; worker++) {
      if (eligible !== undefined && !eligible(worker)) continue;
      if (
        best < 0 || this.#bound[worker]! < this.#bound[best]! ||
        (this.#bound[worker] === this.#bound[best] &&
          this.#pool.inFlight(worker) < this.#pool.inFlight(best))
      ) best = worker;
    }
    if (best < 0) throw new RangeError("No eligible worker for a new key");
    return best;
  }
}
