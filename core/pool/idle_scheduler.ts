/**
 * When to run a stage's idle function (the main script's default export): when
 * the stage has no work in flight, then again after the milliseconds it returned.
 * A stage that is never idle still gets a call once the call is `maxDeferMs`
 * overdue, so periodic housekeeping cannot starve under constant load.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/** Dependencies of an {@link IdleScheduler}. */
export interface IdleSchedulerOptions {
  clock: Clock;
  /** Whether the stage has nothing in flight. */
  isIdle(): boolean;
  /** Starts one idle call; {@link IdleScheduler.done} must follow. */
  run(): void;
  /** How often to look for an idle moment once a call is due (default 10 ms). */
  pollMs?: number;
  /** How long a due call may wait for an idle moment (default 1000 ms). */
  maxDeferMs?: number;
}

/**
 * Schedules idle calls; at most one runs at a time.
 *
 * @example
 * ```ts
 * import { IdleScheduler } from "./idle_scheduler.ts";
 * import { systemClock } from "../time/mod.ts";
 * let calls = 0;
 * const idle = new IdleScheduler({ clock: systemClock, isIdle: () => true, run: () => calls++ });
 * idle.start();
 * await new Promise((resolve) => setTimeout(resolve, 5));
 * idle.done(0); // the function returned 0: no more calls
 * if (calls !== 1) throw new Error("expected one call");
 * idle.stop();
 * ```
 */
export class IdleScheduler {
  #options: IdleSchedulerOptions;
  #timer: TimerHandle | undefined;
  #running = false;
  #stopped = false;
  #dueAt = 0;

  constructor(options: IdleSchedulerOptions) {
    this.#options = options;
  }

  /** Makes the first call due now. */
  start(): void {
    this.#due(0);
  }

  /** The idle function returned `nextMs` (0 or less: stop calling it). */
  done(nextMs: number): void {
    this.#running = false;
    if (nextMs > 0) this.#due(nextMs);
  }

  /** Whether an idle call is running. */
  get running(): boolean {
    return this.#running;
  }

  /** Cancels any pending call. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #due(inMs: number): void {
    if (this.#stopped) return;
    this.#dueAt = this.#options.clock.now() + inMs;
    this.#timer?.cancel();
    this.#timer = this.#options.clock.setTimeout(() => this.#try(), inMs);
  }

  #try(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#running) return;
    const overdue = this.#options.clock.now() - this.#dueAt;
    if (this.#options.isIdle() || overdue >= (this.#options.maxDeferMs ?? 1000)) {
      this.#running = true;
      this.#options.run();
      return;
    }
    this.#timer = this.#options.clock.setTimeout(() => this.#try(), this.#options.pollMs ?? 10);
  }
}
