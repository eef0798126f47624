/**
 * Gauges: values that go up and down (connections, queue depth, memory).
 *
 * @module
 */
import { SeriesSet } from "./_series.ts";
import type { Labels, ValueFamily } from "./snapshot.ts";

/**
 * A settable value per label set. Made by `MetricsRegistry.gauge`; for a value
 * computed when a snapshot is taken, use `MetricsRegistry.gaugeFn`.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./mod.ts";
 * const metrics = new MetricsRegistry();
 * const open = metrics.gauge("stage_open_sockets", "Sockets open now.");
 * open.inc();
 * open.inc();
 * open.dec();
 * if (open.get() !== 1) throw new Error(`expected 1, got ${open.get()}`);
 * open.set(5);
 * if (open.get() !== 5) throw new Error("set did not set");
 * ```
 */
export class Gauge {
  /** The metric name. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  #series: SeriesSet<{ value: number }>;

  /** Prefer `MetricsRegistry.gauge`, which checks the name and shares the metric. */
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
   * Sets the series for `labels` to `value`.
   *
   * @throws {TypeError} `labels` do not match the metric's label names.
   * @throws {RangeError} `value` is not finite.
   */
  set(value: number, labels?: Labels): void {
    this.#series.cell(labels).value = this.#finite(value, "value");
  }

  /** Adds `n` (default 1); throws like {@link Gauge.set}. */
  inc(labels?: Labels, n = 1): void {
    this.#series.cell(labels).value += this.#finite(n, "n");
  }

  /** Subtracts `n` (default 1); throws like {@link Gauge.set}. */
  dec(labels?: Labels, n = 1): void {
    this.#series.cell(labels).value -= this.#finite(n, "n");
  }

  /** The current value for `labels` (0 for a series not used yet). */
  get(labels?: Labels): number {
    return this.#series.find(labels)?.value ?? 0;
  }

  /** Drops the series for `labels` (a stage that went away); true if it existed. */
  delete(labels: Labels): boolean {
    return this.#series.delete(labels);
  }

  /** This gauge's part of a snapshot. */
  family(): ValueFamily {
    const samples = [];
    for (const [labels, cell] of this.#series.entries()) {
      samples.push({ labels, value: cell.value });
    }
    return { name: this.name, help: this.help, type: "gauge", samples };
  }

  #finite(value: number, what: string): number {
    if (Number.isFinite(value)) return value;
    throw new RangeError(`Gauge "${this.name}" needs a finite ${what}; got ${value}`);
  }
}
