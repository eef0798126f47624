/**
 * Merging the snapshots of several processes into one, each series labelled
 * with the process it came from (what a supervisor's `/metrics` serves).
 *
 * @module
 */
import type { Labels, MetricFamily, MetricsSnapshot } from "./snapshot.ts";

/** One process's snapshot and the labels that tell its series apart. */
export interface LabelledSnapshot {
  /** Such as `{ process: "1" }`: put before each series' own labels. */
  labels: Labels;
  snapshot: MetricsSnapshot;
}

/**
 * One snapshot from several: families of the same name are joined (help and
 * type from the first; a family whose type disagrees with it is left out, as
 * Prometheus would refuse it), every series carrying its part's `labels`.
 *
 * @example
 * ```ts
 * import { mergeSnapshots, MetricsRegistry, renderPrometheus } from "./mod.ts";
 * const a = new MetricsRegistry();
 * a.counter("stage_messages_total", "Messages.").inc({}, 2);
 * const b = new MetricsRegistry();
 * b.counter("stage_messages_total", "Messages.").inc({}, 3);
 * const merged = mergeSnapshots([
 *   { labels: { process: "0" }, snapshot: a.snapshot() },
 *   { labels: { process: "1" }, snapshot: b.snapshot() },
 * ]);
 * const text = renderPrometheus(merged);
 * if (!text.includes('stage_messages_total{process="1"} 3')) throw new Error(text);
 * ```
 */
export function mergeSnapshots(parts: readonly LabelledSnapshot[]): MetricsSnapshot {
  const families = new Map<string, MetricFamily>();
  for (const { labels, snapshot } of parts) {
    for (const family of snapshot) {
      let merged = families.get(family.name);
      if (merged === undefined) {
        merged = { ...family, samples: [] } as MetricFamily;
        families.set(family.name, merged);
      }
      if (merged.type !== family.type) continue;
      for (const sample of family.samples) {
        (merged.samples as { labels: Labels }[]).push({
          ...sample,
          labels: { ...labels, ...sample.labels },
        });
      }
    }
  }
  return [...families.values()];
}
