/**
 * The `#router` overload detector: dispatch delay (from a message being queued
 * to its handler starting), p95 over a sliding window, with hysteresis.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/** Whether the process is keeping up with its messages. */
export type OverloadState = "normal" | "overloaded";

/** Options of an {@link OverloadDetector}. */
export interface OverloadDetectorOptions {
  /** p95 dispatch delay (ms) above which the process is overloaded; > 0. */
  thresholdMs: number;
  /** p95 delay (ms) to stay under for a whole window to recover; in (0, thresholdMs], default thresholdMs / 2. */
  recoverMs?: number;
  /** The sliding window (ms); >= bucketMs, default 1000. */
  windowMs?: number;
  /** Sub-window (ms): the window slides, and `start()` evaluates, in these steps; default 100. */
  bucketMs?: number;
  /** Fewer samples than this in a window are no evidence of overload; default 20. */
  minSamples?: number;
  clock: Clock;
  /** The state changed (called once per transition, from `evaluate()`). */
  onChange?(state: OverloadState, p95Ms: number): void;
  /**
   * After every evaluation: the state, the window's p95 and the p95 of the
   * last completed sub-window alone (0 with fewer than 5 samples) — the fast
   * signal admission control follows.
   */
  onEvaluate?(state: OverloadState, p95Ms: number, recentP95Ms: number): void;
}

// A log-linear histogram shared by every sub-window: bucket 0 holds delays
// <= 0.05 ms, bucket i holds (0.05·1.25^(i-1), 0.05·1.25^i], the last one
// everything from ~50 s up. Reporting a bucket's geometric midpoint keeps the
// p95 within ±12% (√1.25) of the true value.
const MIN_MS = 0.05;
const STEP = 1.25;
const LOG_STEP = Math.log(STEP);
const BUCKETS = Math.ceil(Math.log(60_000 / MIN_MS) / LOG_STEP) + 1;
const LAST = BUCKETS - 1;
const MIDPOINT_MS = Float64Array.from({ length: BUCKETS }, (_, i) => MIN_MS * STEP ** (i - 0.5));
const MAX_SUB_WINDOWS = 1000;

function check(name: string, value: number, ok: boolean, expected: string): void {
  if (typeof value !== "number" || !ok) {
    throw new RangeError(`OverloadDetector option ${name} must be ${expected}; got ${value}`);
  }
}

/**
 * Tracks the p95 dispatch delay over a sliding window and reports when the
 * process becomes overloaded (p95 > thresholdMs with at least minSamples
 * samples) and when it recovers: only once every evaluation for a whole window
 * found the p95 under recoverMs, so a delay swinging between recoverMs and
 * thresholdMs does not make it flap.
 *
 * A window with fewer than minSamples samples, and so an idle one, counts as
 * under recoverMs: no work waits, so nothing is delayed.
 *
 * `record()` does not read the clock: it adds to the sub-window current at the
 * last `evaluate()`, and whatever was recorded since then counts as the newest
 * sub-window, however late the evaluation comes (a stalled event loop).
 *
 * @throws {RangeError} from the constructor, naming the invalid option.
 *
 * @example
 * ```ts
 * import { OverloadDetector } from "./overload_detector.ts";
 * import { systemClock } from "../time/mod.ts";
 * const changes: string[] = [];
 * const detector = new OverloadDetector({
 *   thresholdMs: 50,
 *   windowMs: 20,
 *   bucketMs: 2,
 *   clock: systemClock,
 *   onChange: (state) => changes.push(state),
 * });
 * for (let i = 0; i < 100; i++) detector.record(200);
 * await new Promise((resolve) => setTimeout(resolve, 5)); // into the next sub-window
 * detector.evaluate();
 * if (changes.join() !== "overloaded") throw new Error(`changes: ${changes}`);
 * if (Math.abs(detector.p95Ms - 200) > 200 * 0.12) throw new Error(`p95 ${detector.p95Ms}`);
 * ```
 */
export class OverloadDetector {
  #threshold: number;
  #recover: number;
  #windowMs: number;
  #bucketMs: number;
  #minSamples: number;
  #clock: Clock;
  #onChange: ((state: OverloadState, p95Ms: number) => void) | undefined;
  #onEvaluate: OverloadDetectorOptions["onEvaluate"];
  // A ring of sub-windows: the current one, being filled, and the completed
  // ones that make up the window. Totals over the ring make evaluate O(BUCKETS).
  #ring: number;
  #counts: Uint32Array;
  #slotTotals: Float64Array;
  #totals = new Float64Array(BUCKETS);
  #total = 0;
  #current = 0;
  #slotNumber: number;
  #state: OverloadState = "normal";
  #p95 = 0;
  #recentP95 = 0;
  #transitions = 0;
  #since: number;
  #belowSince: number | undefined;
  #timer: TimerHandle | undefined;

  constructor(options: OverloadDetectorOptions) {
    const { thresholdMs, clock } = options;
    check("thresholdMs", thresholdMs, thresholdMs > 0 && thresholdMs < Infinity, "> 0 and finite");
    const recoverMs = options.recoverMs ?? thresholdMs / 2;
    check(
      "recoverMs",
      recoverMs,
      recoverMs > 0 && recoverMs <= thresholdMs,
      `in (0, ${thresholdMs}]`,
    );
    const bucketMs = options.bucketMs ?? 100;
    check("bucketMs", bucketMs, bucketMs > 0 && bucketMs < Infinity, "> 0 and finite");
    const windowMs = options.windowMs ?? 1000;
    const subWindows = Math.ceil(windowMs / bucketMs);
    check(
      "windowMs",
      windowMs,
      windowMs >= bucketMs && subWindows <= MAX_SUB_WINDOWS,
      `>= bucketMs (${bucketMs}) and <= ${MAX_SUB_WINDOWS} × bucketMs`,
    );
    const minSamples = options.minSamples ?? 20;
    check(
      "minSamples",
      minSamples,
      Number.isSafeInteger(minSamples) && minSamples >= 0,
      "an integer >= 0",
    );
    this.#threshold = thresholdMs;
    this.#recover = recoverMs;
    this.#windowMs = windowMs;
    this.#bucketMs = bucketMs;
    this.#minSamples = minSamples;
    this.#clock = clock;
    this.#onChange = options.onChange;
    this.#onEvaluate = options.onEvaluate;
    this.#ring = subWindows + 1;
    this.#counts = new Uint32Array(this.#ring * BUCKETS);
    this.#slotTotals = new Float64Array(this.#ring);
    this.#since = clock.now();
    this.#slotNumber = Math.floor(this.#since / bucketMs);
  }

  /** Records one dispatch delay in milliseconds. O(1), allocation-free. */
  record(delayMs: number): void {
    // NaN and negative delays (clock skew) land in the lowest bucket.
    const bucket = delayMs > MIN_MS
      ? Math.min(LAST, Math.ceil(Math.log(delayMs / MIN_MS) / LOG_STEP))
      : 0;
    this.#counts[this.#current * BUCKETS + bucket]! += 1;
    this.#slotTotals[this.#current]! += 1;
    this.#totals[bucket]! += 1;
    this.#total += 1;
  }

  /** Slides the window to the clock's time, updates the p95 and the state, and returns it. */
  evaluate(): OverloadState {
    const now = this.#clock.now();
    this.#rotate(Math.floor(now / this.#bucketMs));
    const p95 = this.#percentile(0.95);
    this.#p95 = p95;
    this.#recentP95 = this.#slotPercentile((this.#current + this.#ring - 1) % this.#ring, 0.95);
    const evidence = this.#total > 0 && this.#total >= this.#minSamples;
    if (this.#state === "normal") {
      if (evidence && p95 > this.#threshold) this.#change("overloaded", now, p95);
    } else if (evidence && p95 >= this.#recover) {
      this.#belowSince = undefined;
    } else {
      // Set at an evaluation after entering, so a window has also passed since entering.
      this.#belowSince ??= now;
      if (now - this.#belowSince >= this.#windowMs) this.#change("normal", now, p95);
    }
    this.#onEvaluate?.(this.#state, p95, this.#recentP95);
    return this.#state;
  }

  /** Evaluates every bucketMs on the clock until {@link OverloadDetector.stop}. */
  start(): void {
    this.#timer ??= this.#clock.setInterval(() => this.evaluate(), this.#bucketMs);
  }

  /** Stops evaluating; calling it twice is harmless. */
  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** Same as {@link OverloadDetector.stop}. */
  [Symbol.dispose](): void {
    this.stop();
  }

  /** The state since the last transition. */
  get state(): OverloadState {
    return this.#state;
  }

  /** The p95 delay (ms) at the last evaluation; 0 for an empty window. */
  get p95Ms(): number {
    return this.#p95;
  }

  /** The p95 delay (ms) of the last completed sub-window (0 with fewer than 5 samples). */
  get recentP95Ms(): number {
    return this.#recentP95;
  }

  /** How many times the state changed. */
  get transitions(): number {
    return this.#transitions;
  }

  /** Clock time of the last transition (or of construction). */
  get since(): number {
    return this.#since;
  }

  #change(state: OverloadState, now: number, p95: number): void {
    this.#state = state;
    this.#since = now;
    this.#belowSince = undefined;
    this.#transitions += 1;
    this.#onChange?.(state, p95);
  }

  #rotate(slotNumber: number): void {
    if (slotNumber <= this.#slotNumber) return;
    const steps = Math.min(slotNumber - this.#slotNumber, this.#ring - 1);
    this.#slotNumber = slotNumber;
    const from = this.#current;
    for (let i = 1; i <= steps; i++) this.#clear((from + i) % this.#ring);
    this.#current = (from + steps) % this.#ring;
    if (steps > 1) {
      // What was recorded since the last evaluation is the newest completed
      // sub-window, not one from `steps` sub-windows ago.
      const to = (this.#current + this.#ring - 1) % this.#ring;
      this.#counts.copyWithin(to * BUCKETS, from * BUCKETS, (from + 1) * BUCKETS);
      this.#counts.fill(0, from * BUCKETS, (from + 1) * BUCKETS);
      this.#slotTotals[to] = this.#slotTotals[from]!;
      this.#slotTotals[from] = 0;
    }
  }

  #clear(slot: number): void {
    const base = slot * BUCKETS;
    for (let i = 0; i < BUCKETS; i++) this.#totals[i]! -= this.#counts[base + i]!;
    this.#counts.fill(0, base, base + BUCKETS);
    this.#total -= this.#slotTotals[slot]!;
    this.#slotTotals[slot] = 0;
  }

  #slotPercentile(slot: number, q: number): number {
    const total = this.#slotTotals[slot]!;
    if (total < 5) return 0;
    const rank = Math.ceil(q * total);
    const base = slot * BUCKETS;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[base + i]!;
      if (seen >= rank) return MIDPOINT_MS[i]!;
    }
    return MIDPOINT_MS[LAST]!;
  }

  #percentile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.ceil(q * this.#total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#totals[i]!;
      if (seen >= rank) return MIDPOINT_MS[i]!;
    }
    return MIDPOINT_MS[LAST]!;
  }
}
