/**
 * The client's source of time. Timeouts and reconnect backoff go through it so
 * tests can drive time; the shape matches Stage's core `Clock`, so a core test
 * clock fits.
 *
 * @module
 */

/** A cancellable timer. */
export interface ClientTimer {
  /** Cancels the timer; calling it twice is harmless. */
  cancel(): void;
}

/** Time as the client sees it. */
export interface ClientClock {
  /** Milliseconds on a monotonic scale (only differences are meaningful). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): ClientTimer;
}

/**
 * The real clock: `performance.now()` and the runtime's timers (in Deno, Node and browsers).
 *
 * @example
 * ```ts
 * import { systemClientClock } from "./clock.ts";
 * const timer = systemClientClock.setTimeout(() => {}, 1000);
 * timer.cancel();
 * ```
 */
export const systemClientClock: ClientClock = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
};
