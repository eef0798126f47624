/**
 * A fast way for a busy loop to let timers and I/O run: a `MessageChannel`
 * round trip (a macrotask, without the clamping of nested `setTimeout(0)`).
 *
 * @module
 */

/**
 * Yields to the event loop when a loop has run longer than its slice.
 *
 * @example
 * ```ts
 * import { MacrotaskYield } from "./macrotask_yield.ts";
 * using pause = new MacrotaskYield(2);
 * for (let i = 0; i < 3; i++) await pause.maybe();
 * await pause.now();
 * ```
 */
export class MacrotaskYield {
  #channel = new MessageChannel();
  #waiters: (() => void)[] = [];
  #sliceMs: number;
  #since = performance.now();

  /** @param sliceMs how long a loop may run between yields */
  constructor(sliceMs: number) {
    this.#sliceMs = sliceMs;
    this.#channel.port1.onmessage = () => this.#waiters.shift()?.();
  }

  /** Yields if the current slice is used up; otherwise resolves at once. */
  maybe(): Promise<void> | undefined {
    if (performance.now() - this.#since < this.#sliceMs) return undefined;
    return this.now();
  }

  /** Yields to the event loop now. */
  async now(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#waiters.push(resolve);
      this.#channel.port2.postMessage(0);
    });
    this.#since = performance.now();
  }

  /** Restarts the slice (after the loop waited anyway). */
  reset(): void {
    this.#since = performance.now();
  }

  /** Closes the channel (a pending yield resolves). */
  close(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
    this.#channel.port1.close();
    this.#channel.port2.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
