/**
 * Prometheus text exposition format 0.0.4 for a {@link MetricsSnapshot}.
 *
 * @module
 */
import { checkLabelName } from "./_series.ts";
import type { Labels, MetricsSnapshot } from "./snapshot.ts";

/** The `Content-Type` of {@link renderPrometheus}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatNumber(value: number | "+Inf"): string {
  if (value === "+Inf" || value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** `a="x",b="y"` after `before` (a list of pairs already formatted), then `le`. */
function labelPairs(before: string, labels: Labels, le?: number | "+Inf"): string {
  let text = before;
  for (const [name, value] of Object.entries(labels)) {
    text += `${text === "" ? "" : ","}${name}="${escapeLabelValue(value)}"`;
  }
  if (le !== undefined) text += `${text === "" ? "" : ","}le="${formatNumber(le)}"`;
  return text;
}

/**
 * Renders `snapshot` in the Prometheus text format 0.0.4 (serve it with
 * {@link PROMETHEUS_CONTENT_TYPE}). `constLabels` (such as `{ process: "0" }`)
 * are added to every sample, before the sample's own labels.
 *
 * @throws {TypeError} a const label name is invalid or also used by a sample.
 *
 * @example
 * ```ts
 * import { MetricsRegistry, renderPrometheus } from "./mod.ts";
 * const metrics = new MetricsRegistry();
 * metrics.histogram("stage_delay_seconds", "Dispatch delay.", [0.1, 1]).observe(0.5);
 * const text = renderPrometheus(metrics.snapshot(), { process: "0" });
 * const expected = [
 *   "# HELP stage_delay_seconds Dispatch delay.",
 *   "# TYPE stage_delay_seconds histogram",
 *   'stage_delay_seconds_bucket{process="0",le="0.1"} 0',
 *   'stage_delay_seconds_bucket{process="0",le="1"} 1',
 *   'stage_delay_seconds_bucket{process="0",le="+Inf"} 1',
 *   'stage_delay_seconds_sum{process="0"} 0.5',
 *   'stage_delay_seconds_count{process="0"} 1',
 *   "",
 * ].join("\n");
 * if (text !== expected) throw new Error(text);
 * ```
 */
export function renderPrometheus(snapshot: MetricsSnapshot, constLabels: Labels = {}): string {
  const constNames = Object.keys(constLabels);
  for (const name of constNames) checkLabelName("const labels", name);
  const constText = labelPairs("", constLabels);
  const lines: string[] = [];
  for (const family of snapshot) {
    const { name } = family;
    const labelsOf = (labels: Labels, le?: number | "+Inf") => {
      for (const label of constNames) {
        if (Object.hasOwn(labels, label)) {
          throw new TypeError(
            `Const label "${label}" is also a label of metric "${name}"; rename one of them`,
          );
        }
      }
      const text = labelPairs(constText, labels, le);
      return text === "" ? "" : `{${text}}`;
    };
    lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
    if (family.type === "histogram") {
      for (const sample of family.samples) {
        for (const { le, count } of sample.buckets) {
          lines.push(`${name}_bucket${labelsOf(sample.labels, le)} ${formatNumber(count)}`);
        }
        lines.push(`${name}_sum${labelsOf(sample.labels)} ${formatNumber(sample.sum)}`);
        lines.push(`${name}_count${labelsOf(sample.labels)} ${formatNumber(sample.count)}`);
      }
    } else {
      for (const sample of family.samples) {
        lines.push(`${name}${labelsOf(sample.labels)} ${formatNumber(sample.value)}`);
      }
    }
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
