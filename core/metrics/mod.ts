/**
 * Metrics: one registry per process (counters, gauges, collected gauges and
 * histograms), a plain-data snapshot that crosses worker boundaries, and the
 * Prometheus text format.
 *
 * @module
 */
export { Counter } from "./counter.ts";
export { Gauge } from "./gauge.ts";
export { DELAY_BUCKETS_SECONDS, Histogram } from "./histogram.ts";
export { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
export { type LabelledSnapshot, mergeSnapshots } from "./merge_snapshots.ts";
export {
  type GaugeCollector,
  type MetricRegistration,
  MetricsRegistry,
  type MetricsRegistryOptions,
} from "./registry.ts";
export type {
  BucketCount,
  HistogramFamily,
  HistogramSample,
  Labels,
  MetricFamily,
  MetricsSnapshot,
  MetricType,
  ValueFamily,
  ValueSample,
} from "./snapshot.ts";
