/**
 * Cooperative yield points for long-running script code: `stage.yield()` and
 * `for await (const item of stage.slice(items))`. They let the worker's event
 * loop run (other keys' records, timers, replies) and honour the yield flag the
 * watchdog raises in the worker's control block.
 *
 * @module
 */

/** What the yield points read: the worker's control block. */
export interface YieldSignal {
  /** Whether the watchdog asked this worker to yield. */
  readonly yieldRequested: boolean;
  /** Clears the request after yielding. */
  clearYield(): void;
}

/** Longest a `slice` loop runs between yields when nobody asks it to yield. */
const SLICE_MS = 10;

/**
 * Yield points bound to one worker.
 *
 * @example
 * ```ts
 * import { CooperativeYield } from "./cooperative_yield.ts";
 * const yields = new CooperativeYield({ yieldRequested: false, clearYield() {} });
 * let sum = 0;
 * for await (const n of yields.slice([1, 2, 3])) sum += n;
 * await yields.yield();
 * if (sum !== 6) throw new Error("lost items");
 * ```
 */
export class CooperativeYield {
  #signal: YieldSignal;
  #yields = 0;

  constructor(signal: YieldSignal) {
    this.#signal = signal;
  }

  /** Number of times code actually yielded (for metrics). */
  get count(): number {
    return this.#yields;
  }

  /** Lets the event loop run once (a macrotask), clearing a pending yield request. */
  async yield(): Promise<void> {
    this.#yields++;
    this.#signal.clearYield();
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
  }

  /**
   * For async API calls: yields a macrotask first when the watchdog asked this
   * worker to yield, so code that loops over awaited API calls lets others run.
   */
  honour(): Promise<void> | undefined {
    return this.#signal.yieldRequested ? this.yield() : undefined;
  }

  /**
   * Iterates `items`, yielding whenever the watchdog asks or every ~10 ms.
   *
   * @throws TypeError when `items` is neither iterable nor async iterable
   */
  async *slice<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
    if (
      items === null || items === undefined || (
        typeof (items as Iterable<T>)[Symbol.iterator] !== "function" &&
        typeof (items as AsyncIterable<T>)[Symbol.asyncIterator] !== "function"
      )
    ) {
      throw new TypeError(`stage.slice: expected an iterable; got ${String(items)}`);
    }
    let since = performance.now();
    for await (const item of items) {
      yield item;
      if (this.#signal.yieldRequested || performance.now() - since >= SLICE_MS) {
        await this.yield();
        since = performance.now();
      }
    }
  }
}
