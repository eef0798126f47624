/**
 * Forced yielding: the main-thread watchdog that reads every worker's control
 * block. A record running past the time slice raises the worker's yield flag
 * and takes the worker out of dispatch; past the hard limit the worker is
 * terminated (and replaced by its pool).
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";
import type { ControlSnapshot } from "./control_block.ts";

/** What the watchdog reads and does; the stage wires it to its pool and scheduler. */
export interface WatchdogTarget {
  readonly size: number;
  /** The worker's control block now (undefined while it is being replaced). */
  control(worker: number): ControlSnapshot | undefined;
  /** Raises the worker's yield flag. */
  requestYield(worker: number): void;
  /** The worker ran one record past the slice. */
  stuck(worker: number, runningMs: number, snapshot: ControlSnapshot): void;
  /** The worker finished that record (or started another). */
  recovered(worker: number): void;
  /** The worker ran one record past the hard limit: terminate and replace it. */
  terminate(worker: number, runningMs: number, snapshot: ControlSnapshot): void;
}

/** Limits of a {@link Watchdog}. */
export interface WatchdogOptions {
  /** Time slice, ms (default 50). */
  sliceMs?: number;
  /** Hard limit, ms (default 5000). */
  hardLimitMs?: number;
  /** Epoch ms (the clock workers stamp their start times with). */
  clock: Clock;
}

interface Watch {
  /** Start time of the record seen running past the slice (0 = none). */
  stuckSince: number;
  terminated: boolean;
}

/**
 * Checks the workers every few milliseconds; see the module documentation.
 *
 * @example
 * ```ts
 * import { Watchdog } from "./watchdog.ts";
 * import { systemClock } from "../time/mod.ts";
 * const watchdog = new Watchdog({
 *   size: 1,
 *   control: () => undefined,
 *   requestYield() {}, stuck() {}, recovered() {}, terminate() {},
 * }, { clock: systemClock });
 * watchdog.check(); // nothing running: nothing happens
 * ```
 */
export class Watchdog {
  readonly sliceMs: number;
  readonly hardLimitMs: number;
  #target: WatchdogTarget;
  #clock: Clock;
  #watches: Watch[] = [];
  #timer: TimerHandle | undefined;
  #yields = 0;
  #terminations = 0;

  /** @throws RangeError when the slice is not positive or the hard limit not above it */
  constructor(target: WatchdogTarget, options: WatchdogOptions) {
    this.sliceMs = options.sliceMs ?? 50;
    this.hardLimitMs = options.hardLimitMs ?? 5000;
    if (!(this.sliceMs > 0)) throw new RangeError(`Time slice must be > 0 ms; got ${this.sliceMs}`);
    if (!(this.hardLimitMs > this.sliceMs)) {
      throw new RangeError(
        `Hard limit (${this.hardLimitMs} ms) must be above the time slice (${this.sliceMs} ms)`,
      );
    }
    this.#target = target;
    this.#clock = options.clock;
    for (let w = 0; w < target.size; w++) this.#watches.push({ stuckSince: 0, terminated: false });
  }

  /** Times a yield was requested. */
  get yieldRequests(): number {
    return this.#yields;
  }

  /** Workers terminated for running past the hard limit. */
  get terminations(): number {
    return this.#terminations;
  }

  /** Checks every `sliceMs / 5` (at least every 10 ms). */
  start(): void {
    this.#timer ??= this.#clock.setInterval(
      () => this.check(),
      Math.max(1, Math.min(10, this.sliceMs / 5)),
    );
  }

  /** Stops checking. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  [Symbol.dispose](): void {
    this.stop();
  }

  /** A replaced worker starts with a clean watch. */
  reset(worker: number): void {
    this.#watches[worker] = { stuckSince: 0, terminated: false };
  }

  /** One pass over the workers. */
  check(): void {
    const now = this.#clock.wallNow();
    for (let worker = 0; worker < this.#watches.length; worker++) {
      const watch = this.#watches[worker]!;
      const snapshot = this.#target.control(worker);
      const running = snapshot !== undefined && snapshot.running;
      if (watch.stuckSince !== 0 && (!running || snapshot.startedAt !== watch.stuckSince)) {
        watch.stuckSince = 0;
        if (!watch.terminated) this.#target.recovered(worker);
      }
      if (!running || watch.terminated) continue;
      const runningMs = now - snapshot.startedAt;
      if (runningMs >= this.hardLimitMs) {
        watch.terminated = true;
        this.#terminations++;
        this.#target.terminate(worker, runningMs, snapshot);
        continue;
      }
      if (runningMs >= this.sliceMs && watch.stuckSince === 0) {
        watch.stuckSince = snapshot.startedAt;
        this.#yields++;
        this.#target.requestYield(worker);
        this.#target.stuck(worker, runningMs, snapshot);
      }
    }
  }
}
