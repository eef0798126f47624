/**
 * The source of time for everything that waits or expires.
 *
 * Core code never calls `Date.now`, `performance.now` or `setTimeout` directly
 * where timing is the subject: it takes a {@link Clock}, so tests can drive time.
 *
 * @module
 */

/** A cancellable timer returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  /** Cancels the timer; calling it twice is harmless. */
  cancel(): void;
}

/** Time as core code sees it. */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences are meaningful). */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch. */
  wallNow(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Calls `fn` every `ms` milliseconds until cancelled. */
  setInterval(fn: () => void, ms: number): TimerHandle;
}

/**
 * The real clock: `performance.now()` and the runtime's timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const start = systemClock.now();
 * if (systemClock.now() < start) throw new Error("monotonic time went back");
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  // Epoch ms at sub-ms resolution, on the same scale workers stamp start times with.
  wallNow: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, ms) {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
  setInterval(fn, ms) {
    const id = setInterval(fn, ms);
    return { cancel: () => clearInterval(id) };
  },
};

/**
 * A clock reading taken once per task: every call in one turn of the event loop
 * (all the frames of one read, all the records of one drain) returns the same
 * value. For per-message timestamps on hot paths, where reading the clock per
 * message costs more than the work it stamps.
 *
 * @example
 * ```ts
 * import { oncePerTask, systemClock } from "./clock.ts";
 * const now = oncePerTask(() => systemClock.wallNow());
 * if (now() !== now()) throw new Error("one task, one reading");
 * ```
 */
export function oncePerTask(read: () => number): () => number {
  let stamp: number | undefined;
  const clear = () => stamp = undefined;
  return () => {
    if (stamp === undefined) {
      stamp = read();
      queueMicrotask(clear);
    }
    return stamp;
  };
}
