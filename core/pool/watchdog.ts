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
  /**
   * How long a record dispatched to the worker has waited to start while the
   * worker finished nothing (ms): its event loop is blocked by code the control
   * block does not see (a handler's continuation after an `await`, a timer).
   */
  waitingMs?(worker: number): number;
  /** Sends the worker a record that needs no handler, so its ring loop turns when free. */
  ping?(worker: number): void;
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
  stuck: boolean;
  /** Records the worker had finished at the last check, and when that count last moved. */
  handled: number;
  progressAt: number;
  /** Epoch ms from which the worker's event loop was seen blocked (0 = not). */
  blockedSince: number;
  /** Start time of the running record that was asked to yield (0 = none). */
  askedFor: number;
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
    for (let w = 0; w < target.size; w++) this.#watches.push(freshWatch());
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
    this.#watches[worker] = freshWatch();
  }

  /**
   * How long the worker's event loop has been blocked by code outside a record
   * (ms): records wait unstarted and its ring loop has not turned since.
   */
  #blockedMs(worker: number, watch: Watch, snapshot: ControlSnapshot, now: number): number {
    // A worker that finishes records is working, however long its loop runs.
    if (snapshot.handled !== watch.handled) {
      watch.handled = snapshot.handled;
      watch.progressAt = now;
      watch.blockedSince = 0;
    }
    if (watch.blockedSince !== 0) {
      if (snapshot.loopAt <= watch.blockedSince) return now - watch.blockedSince;
      watch.blockedSince = 0; // the loop turned
    }
    if (snapshot.running) return 0;
    const waitingMs = this.#target.waitingMs?.(worker) ?? 0;
    if (
      waitingMs < this.sliceMs || now - snapshot.loopAt < this.sliceMs ||
      now - watch.progressAt < this.sliceMs
    ) return 0;
    watch.blockedSince = Math.max(snapshot.loopAt, now - waitingMs);
    // Its queued records go elsewhere now; this one tells us when the loop is free.
    this.#target.ping?.(worker);
    return now - watch.blockedSince;
  }

  /** One pass over the workers. */
  check(): void {
    const now = this.#clock.wallNow();
    for (let worker = 0; worker < this.#watches.length; worker++) {
      const watch = this.#watches[worker]!;
      if (watch.terminated) continue;
      const snapshot = this.#target.control(worker);
      if (snapshot === undefined) continue;
      const runningMs = snapshot.running ? now - snapshot.startedAt : 0;
      const stalledMs = Math.max(runningMs, this.#blockedMs(worker, watch, snapshot, now));
      if (stalledMs >= this.hardLimitMs) {
        watch.terminated = true;
        this.#terminations++;
        this.#target.terminate(worker, stalledMs, snapshot);
        continue;
      }
      if (stalledMs < this.sliceMs) {
        if (watch.stuck) {
          watch.stuck = false;
          watch.askedFor = 0;
          this.#target.recovered(worker);
        }
        continue;
      }
      // Past the slice: ask the running record to yield (once per record).
      if (snapshot.running && watch.askedFor !== snapshot.startedAt) {
        watch.askedFor = snapshot.startedAt;
        this.#yields++;
        this.#target.requestYield(worker);
      }
      if (!watch.stuck) {
        watch.stuck = true;
        this.#target.stuck(worker, stalledMs, snapshot);
      }
    }
  }
}

function freshWatch(): Watch {
  return {
    stuck: false,
    handled: 0,
    progressAt: 0,
    blockedSince: 0,
    askedFor: 0,
    terminated: false,
  };
}
