/**
 * Histograms: observations counted into fixed buckets, Prometheus style, with
 * quantiles estimated from the buckets.
 *
 * @module
 */
import { checkMetricName, SeriesSet } from "./_series.ts";
import type { BucketCount, HistogramFamily, Labels } from "./snapshot.ts";

/**
 * Bucket bounds for delays in seconds: 0.1 ms to 10 s, 1-2-3-5 steps per decade
 * (21 buckets, roughly log-spaced).
 */
export const DELAY_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.0001,
  0.0002,
  0.0003,
  0.0005,
  0.001,
  0.002,
  0.003,
  0.005,
  0.01,
  0.02,
  0.03,
  0.05,
  0.1,
  0.2,
  0.3,
  0.5,
  1,
  2,
  3,
  5,
  10,
]);

interface Cell {
  /** Per bucket, not cumulative; the last entry is the `+Inf` bucket. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * Observations per label set, counted into buckets `value <= le`. Made by
 * `MetricsRegistry.histogram`.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./mod.ts";
 * const metrics = new MetricsRegistry();
 * const delay = metrics.histogram("stage_delay_seconds", "Dispatch delay.", [0.01, 0.1, 1]);
 * for (let i = 0; i < 100; i++) delay.observe(i < 50 ? 0.005 : 0.05);
 * if (delay.count() !== 100) throw new Error("lost observations");
 * const p90 = delay.quantile(0.9); // in (0.01, 0.1]: interpolated inside that bucket
 * if (Math.abs(p90 - 0.082) > 1e-9) throw new Error(`p90 = ${p90}`);
 * ```
 */
export class Histogram {
  /** The metric name. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  /** The finite upper bounds, increasing; `+Inf` is implied. */
  readonly buckets: readonly number[];
  #series: SeriesSet<Cell>;

  /**
   * Prefer `MetricsRegistry.histogram`, which checks the name and shares the metric.
   *
   * @throws {TypeError} invalid metric or label names (`le` is reserved).
   * @throws {RangeError} `buckets` are not finite and strictly increasing (a trailing
   * `Infinity` is allowed and dropped).
   */
  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[],
  ) {
    checkMetricName(name);
    this.name = name;
    this.help = help;
    const bounds = buckets.at(-1) === Infinity ? buckets.slice(0, -1) : [...buckets];
    bounds.forEach((bound, i) => {
      if (!Number.isFinite(bound) || (i > 0 && bound <= (bounds[i - 1] as number))) {
        throw new RangeError(
          `Histogram "${name}" buckets must be finite and strictly increasing; got [${buckets}]`,
        );
      }
    });
    this.buckets = Object.freeze(bounds);
    const size = bounds.length + 1;
    const create = () => ({ counts: new Float64Array(size), sum: 0, count: 0 });
    this.#series = new SeriesSet(name, labelNames, create, "le");
  }

  /** The label names every use must give, in order. */
  get labelNames(): readonly string[] {
    return this.#series.labelNames;
  }

  /**
   * Counts `value` in the series for `labels`.
   *
   * @throws {TypeError} `labels` do not match the metric's label names.
   * @throws {RangeError} `value` is not finite.
   */
  observe(value: number, labels?: Labels): void {
    if (!Number.isFinite(value)) {
      throw new RangeError(`Histogram "${this.name}" needs a finite value; got ${value}`);
    }
    const cell = this.#series.cell(labels);
    // Binary search for the first bound >= value (buckets are inclusive upper bounds).
    const bounds = this.buckets;
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (value <= (bounds[mid] as number)) hi = mid;
      else lo = mid + 1;
    }
    cell.counts[lo]! += 1;
    cell.sum += value;
    cell.count += 1;
  }

  /** Number of observations for `labels`. */
  count(labels?: Labels): number {
    return this.#series.find(labels)?.count ?? 0;
  }

  /** Sum of observations for `labels`. */
  sum(labels?: Labels): number {
    return this.#series.find(labels)?.sum ?? 0;
  }

  /**
   * Estimates the `q` quantile for `labels` as Prometheus' `histogram_quantile`
   * does: linear interpolation inside the bucket holding rank `q * count`, the
   * first bucket starting at 0; a rank in the `+Inf` bucket yields the highest
   * finite bound. NaN when there are no observations (or no finite buckets).
   *
   * @throws {RangeError} `q` is outside [0, 1].
   */
  quantile(q: number, labels?: Labels): number {
    if (!(q >= 0 && q <= 1)) {
      throw new RangeError(`Histogram "${this.name}" quantile must be in [0, 1]; got ${q}`);
    }
    const cell = this.#series.find(labels);
    const bounds = this.buckets;
    if (cell === undefined || cell.count === 0 || bounds.length === 0) return NaN;
    let rank = q * cell.count;
    for (let i = 0; i < bounds.length; i++) {
      const inBucket = cell.counts[i] as number;
      const upper = bounds[i] as number;
      if (inBucket >= rank && (inBucket > 0 || i === 0)) {
        if (i === 0 && upper <= 0) return upper;
        const lower = i === 0 ? 0 : bounds[i - 1] as number;
        return inBucket === 0 ? lower : lower + (upper - lower) * (rank / inBucket);
      }
      rank -= inBucket;
    }
    return bounds[bounds.length - 1] as number;
  }

  /** Drops the series for `labels` (a stage that went away); true if it existed. */
  delete(labels: Labels): boolean {
    return this.#series.delete(labels);
  }

  /** This histogram's part of a snapshot (cumulative buckets). */
  family(): HistogramFamily {
    const samples = [];
    for (const [labels, cell] of this.#series.entries()) {
      const buckets: BucketCount[] = [];
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += cell.counts[i] as number;
        buckets.push({ le, count: cumulative });
      });
      buckets.push({ le: "+Inf", count: cell.count });
      samples.push({ labels, buckets, sum: cell.sum, count: cell.count });
    }
    return { name: this.name, help: this.help, type: "histogram", samples };
  }
}
