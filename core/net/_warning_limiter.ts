/**
 * Rate limiting of repeated warnings, so that an attack cannot flood the log.
 *
 * @module
 */
import type { Clock } from "../time/mod.ts";

/** Lets through at most one warning per key per interval and counts the rest. */
export class WarningLimiter {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** Per key: when a warning last went through, and how many were held back since. */
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  /**
   * @param clock the time source
   * @param intervalMs the least time between two warnings of one key
   */
  constructor(clock: Clock, intervalMs: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /**
   * Whether a warning of `key` may be logged now: the number of warnings of
   * `key` held back since the last one let through, or `undefined` to hold
   * this one back too. Keys should come from a small fixed set.
   */
  take(key: string): number | undefined {
    const now = this.#clock.now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.suppressed++;
      return undefined;
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    return last?.suppressed ?? 0;
  }
}
