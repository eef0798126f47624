/**
 * Counters: values that only go up (requests served, errors, bytes sent).
 *
 * @module
 */
import { SeriesSet } from "./_series.ts";
import type { Labels, ValueFamily } from "./snapshot.ts";

/**
 * A monotonically increasing count per label set. Made by `MetricsRegistry.counter`.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./mod.ts";
 * const metrics = new MetricsRegistry();
 * const served = metrics.counter("stage_requests_total", "Requests served.", ["stage"]);
 * served.inc({ stage: "login" });
 * served.inc({ stage: "login" }, 2);
 * if (served.get({ stage: "login" }) !== 3) throw new Error("lost an increment");
 * ```
 */
export class Counter {
  /** The metric name. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  #series: SeriesSet<{ value: number }>;

  /** Prefer `MetricsRegistry.counter`, which checks the name and shares the metric. */
  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.#series = new SeriesSet(name, labelNames, () => ({ value: 0 }));
  }

  /** The label names every use must give, in order. */
  get labelNames(): readonly string[] {
    return this.#series.labelNames;
  }

  /**
   * Adds `n` (default 1) to the series for `labels`.
   *
   * @throws {TypeError} `labels` do not match the metric's label names.
   * @throws {RangeError} `n` is negative or not finite.
   */
  inc(labels?: Labels, n = 1): void {
    if (!(n >= 0 && n !== Infinity)) {
      throw new RangeError(`Counter "${this.name}" can only grow by a finite n >= 0; got ${n}`);
    }
    this.#series.cell(labels).value += n;
  }

  /** The current value for `labels` (0 for a series not used yet). */
  get(labels?: Labels): number {
    return this.#series.find(labels)?.value ?? 0;
  }

  /** Drops the series for `labels` (a stage that went away); true if it existed. */
  delete(labels: Labels): boolean {
    return this.#series.delete(labels);
  }

  /** This counter's part of a snapshot. */
  family(): ValueFamily {
    const samples = [];
    for (const [labels, cell] of this.#series.entries()) {
      samples.push({ labels, value: cell.value });
    }
    return { name: this.name, help: this.help, type: "counter", samples };
  }
}
