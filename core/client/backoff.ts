/**
 * Reconnect backoff: exponential, capped, jittered.
 *
 * @module
 */

/** How a client reconnects after losing its connection. */
export interface ReconnectOptions {
  /** Delay cap before the first attempt, in ms (doubles per failed attempt). */
  initialMs: number;
  /** The largest delay cap, in ms. */
  maxMs: number;
  /** Consecutive failed attempts before giving up (default: never give up). */
  attempts?: number;
}

/**
 * Checks reconnect options.
 *
 * @throws {RangeError} naming the option and the value found
 */
export function checkReconnect(options: ReconnectOptions): ReconnectOptions {
  const { initialMs, maxMs, attempts } = options;
  if (!Number.isFinite(initialMs) || initialMs < 0) {
    throw new RangeError(`reconnect.initialMs: expected a number >= 0, found ${initialMs}`);
  }
  if (!Number.isFinite(maxMs) || maxMs < initialMs) {
    throw new RangeError(
      `reconnect.maxMs: expected a number >= initialMs (${initialMs}), found ${maxMs}`,
    );
  }
  if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 1)) {
    throw new RangeError(`reconnect.attempts: expected a positive integer, found ${attempts}`);
  }
  return options;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): the cap is
 * `min(maxMs, initialMs * 2^attempt)` and the delay is drawn uniformly from
 * `[cap / 2, cap]`, so clients that lost the same server do not return in step.
 *
 * @param attempt 0-based index of the attempt
 * @param options the backoff's `initialMs` and `maxMs`
 * @param random a source of numbers in `[0, 1)` (inject a fixed one in tests)
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * const delay = backoffDelay(3, { initialMs: 100, maxMs: 500 }, () => 0.5);
 * if (delay !== 375) throw new Error(`expected 375, got ${delay}`);
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: Pick<ReconnectOptions, "initialMs" | "maxMs">,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 52));
  return cap / 2 + random() * (cap / 2);
}
