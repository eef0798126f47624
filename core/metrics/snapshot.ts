/**
 * What `MetricsRegistry.snapshot()` returns: plain data that crosses worker and
 * process boundaries (structuredClone-able and JSON-safe), reviewed as a wire format.
 *
 * @module
 */

/** Label names to label values of one series. */
export type Labels = Record<string, string>;

/** The kind of a metric, as in the Prometheus `# TYPE` line. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One counter or gauge series. */
export interface ValueSample {
  labels: Labels;
  /** Always finite: counters and gauges refuse non-finite values. */
  value: number;
}

/**
 * One cumulative histogram bucket: `count` observations were `<= le`.
 *
 * `le` is a finite number, except the last bucket of every histogram, whose
 * `le` is the string `"+Inf"` (a number would turn into `null` in JSON).
 */
export interface BucketCount {
  le: number | "+Inf";
  count: number;
}

/** One histogram series. */
export interface HistogramSample {
  labels: Labels;
  /** Cumulative, in increasing `le` order, ending with `"+Inf"` (whose count is `count`). */
  buckets: BucketCount[];
  /** Sum of all observed values. */
  sum: number;
  /** Number of observations. */
  count: number;
}

/** A counter or gauge with its series. */
export interface ValueFamily {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: ValueSample[];
}

/** A histogram with its series. */
export interface HistogramFamily {
  name: string;
  help: string;
  type: "histogram";
  samples: HistogramSample[];
}

/** One metric (a name, its help and type) with all its series. */
export type MetricFamily = ValueFamily | HistogramFamily;

/** Every metric of a registry at one moment, in registration order. */
export type MetricsSnapshot = MetricFamily[];
