/**
 * Admission of new connections: unlimited normally; while the process is
 * overloaded, a rate set by the overload controller (0 = closed: connections
 * wait in the kernel's backlog), so a backlog of waiting clients is let in at
 * the pace the process can serve them, not all at once when it recovers.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/**
 * A token bucket for accepts; {@link take} resolves when one more connection
 * may be let in.
 *
 * @example
 * ```ts
 * import { Admission } from "./admission.ts";
 * import { systemClock } from "../time/mod.ts";
 * const admission = new Admission(systemClock);
 * await admission.take(); // unlimited: at once
 * admission.setRate(0);
 * if (!admission.isClosed) throw new Error("rate 0 closes");
 * admission.setRate(Infinity);
 * await admission.take();
 * ```
 */
export class Admission {
  #clock: Clock;
  #rate = Infinity;
  #tokens = 1;
  #last: number;
  #waiters: (() => void)[] = [];
  #timer: TimerHandle | undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#last = clock.now();
  }

  /** Connections per second let in (Infinity: unlimited, 0: closed). */
  get rate(): number {
    return this.#rate;
  }

  /** Whether nobody is let in. */
  get isClosed(): boolean {
    return this.#rate === 0;
  }

  /** Sets the rate (connections per second; Infinity: unlimited, 0: closed). */
  setRate(rate: number): void {
    if (!(rate >= 0)) throw new RangeError(`Admission rate must be >= 0; got ${rate}`);
    this.#refill();
    this.#rate = rate;
    if (rate === 0) this.#tokens = Math.min(this.#tokens, 1);
    this.#cancelTimer();
    this.#serve();
  }

  /** Lets everyone in at once and stays unlimited (shutdown). */
  release(): void {
    this.setRate(Infinity);
  }

  /** Resolves when one more connection may be admitted. */
  take(): Promise<void> {
    if (this.#rate === Infinity && this.#waiters.length === 0) return Promise.resolve();
    const taken = new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#serve();
    return taken;
  }

  #refill(): void {
    const now = this.#clock.now();
    if (this.#rate > 0 && this.#rate !== Infinity) {
      // A burst of at most a tenth of a second's worth.
      const burst = Math.max(1, this.#rate / 10);
      this.#tokens = Math.min(this.#tokens + (now - this.#last) * this.#rate / 1000, burst);
    }
    this.#last = now;
  }

  #serve(): void {
    if (this.#waiters.length === 0 || this.#rate === 0) return;
    if (this.#rate === Infinity) {
      for (const wake of this.#waiters.splice(0)) wake();
      return;
    }
    this.#refill();
    while (this.#tokens >= 1 && this.#waiters.length > 0) {
      this.#tokens--;
      this.#waiters.shift()!();
    }
    if (this.#waiters.length > 0 && this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#serve();
      }, Math.max(1, (1 - this.#tokens) * 1000 / this.#rate));
    }
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
