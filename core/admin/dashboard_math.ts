/**
 * The pure pieces of the dashboard page: a small Prometheus text parser, sums
 * across labels, counter rates, quantiles from histogram bucket deltas and HTML
 * escaping. The page runs these very functions: {@link DASHBOARD_MATH_SOURCE}
 * is their source text (`Function.prototype.toString`), inlined into the page's
 * script, so what the unit tests check is what the browser runs. Each function
 * therefore stands alone: no imports, no module-level names but each other.
 *
 * @module
 */

/** One sample line of the Prometheus text format. */
export interface PromSample {
  /** The sample name as written (`x_bucket`, `x_count` for histograms). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** `[le, count]` pairs of a histogram, by ascending `le` (`Infinity` for `+Inf`). */
export type Buckets = Array<[number, number]>;

/**
 * Parses the Prometheus text format 0.0.4: comments and blank lines are
 * skipped, label values unescaped, `+Inf`/`-Inf`/`NaN` understood; a line that
 * does not parse is skipped (the page shows what it can).
 *
 * @example
 * ```ts
 * import { parsePrometheus } from "./dashboard_math.ts";
 * const samples = parsePrometheus('# TYPE a counter\na{stage="x\\"y"} 3\nb +Inf\n');
 * if (samples.length !== 2 || samples[0]?.labels.stage !== 'x"y') throw new Error("labels");
 * if (samples[1]?.value !== Infinity) throw new Error("+Inf");
 * ```
 */
export function parsePrometheus(text: string): PromSample[] {
  const samples: PromSample[] = [];
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
  const labelRe = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)/y;
  const unescape = (s: string) => s.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c));
  const number = (s: string) =>
    s === "+Inf" || s === "Inf" ? Infinity : s === "-Inf" ? -Infinity : Number(s);
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const name = nameRe.exec(line)?.[0];
    if (name === undefined) continue;
    let at = name.length;
    const labels: Record<string, string> = Object.create(null);
    if (line[at] === "{") {
      at++;
      for (;;) {
        labelRe.lastIndex = at;
        const pair = labelRe.exec(line);
        if (pair === null) break;
        labels[pair[1]!] = unescape(pair[2]!);
        at = labelRe.lastIndex;
        if (pair[3] !== ",") break;
      }
      if (line[at] !== "}") continue;
      at++;
    }
    const written = line.slice(at).trim().split(/\s+/)[0] ?? "";
    const value = number(written);
    if (written === "" || Number.isNaN(value) && written !== "NaN") continue;
    samples.push({ name, labels, value });
  }
  return samples;
}

/**
 * Sums the samples named `name` across labels, grouped by the labels in `by`
 * (key: their values joined by `"\u001f"`, a missing label counting as `""`;
 * no `by`: one key `""`). Extra labels (such as `process`) are summed over.
 *
 * @example
 * ```ts
 * import { parsePrometheus, sumSamples } from "./dashboard_math.ts";
 * const s = parsePrometheus('m{stage="a",w="0"} 1\nm{stage="a",w="1"} 2\nm{stage="b"} 4\n');
 * const byStage = sumSamples(s, "m", ["stage"]);
 * if (byStage.a !== 3 || byStage.b !== 4 || sumSamples(s, "m")[""] !== 7) throw new Error();
 * ```
 */
export function sumSamples(
  samples: PromSample[],
  name: string,
  by: string[] = [],
): Record<string, number> {
  const sums: Record<string, number> = Object.create(null);
  for (const sample of samples) {
    if (sample.name !== name) continue;
    const key = by.map((label) => sample.labels[label] ?? "").join("\u001f");
    sums[key] = (sums[key] ?? 0) + sample.value;
  }
  return sums;
}

/**
 * The cumulative buckets of histogram `name` (its `name_bucket` samples),
 * summed across every other label, by ascending `le`.
 *
 * @example
 * ```ts
 * import { histogramBuckets, parsePrometheus } from "./dashboard_math.ts";
 * const s = parsePrometheus('h_bucket{a="1",le="+Inf"} 3\nh_bucket{a="1",le="0.1"} 1\n' +
 *   'h_bucket{a="2",le="0.1"} 2\nh_bucket{a="2",le="+Inf"} 2\n');
 * const b = histogramBuckets(s, "h");
 * if (JSON.stringify(b) !== JSON.stringify([[0.1, 3], [Infinity, 5]])) throw new Error();
 * ```
 */
export function histogramBuckets(samples: PromSample[], name: string): Buckets {
  const byLe = new Map<number, number>();
  const bucket = name + "_bucket";
  for (const sample of samples) {
    if (sample.name !== bucket || sample.labels.le === undefined) continue;
    const le = sample.labels.le === "+Inf" ? Infinity : Number(sample.labels.le);
    if (Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + sample.value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * What each bucket gained from `previous` to `next` (observations between two
 * polls). A bucket that went down means a restart: `next` is returned as it is.
 *
 * @example
 * ```ts
 * import { bucketDeltas } from "./dashboard_math.ts";
 * const d = bucketDeltas([[0.1, 1], [Infinity, 2]], [[0.1, 4], [Infinity, 6]]);
 * if (JSON.stringify(d) !== JSON.stringify([[0.1, 3], [Infinity, 4]])) throw new Error();
 * ```
 */
export function bucketDeltas(previous: Buckets, next: Buckets): Buckets {
  const before = new Map(previous);
  const deltas: Buckets = [];
  for (const [le, count] of next) {
    const delta = count - (before.get(le) ?? 0);
    if (delta < 0) return next.map(([l, c]): [number, number] => [l, c]);
    deltas.push([le, delta]);
  }
  return deltas;
}

/**
 * The `q` quantile (0..1) of cumulative `buckets`, as Prometheus's
 * `histogram_quantile` computes it: linear interpolation inside the bucket the
 * rank falls in (from 0 for the first one); a rank in the `+Inf` bucket gives
 * the largest finite bound. `NaN` when there is no observation.
 *
 * @throws {RangeError} `q` is not in [0, 1].
 * @example
 * ```ts
 * import { histogramQuantile } from "./dashboard_math.ts";
 * const b: Array<[number, number]> = [[0.01, 50], [0.1, 100], [Infinity, 100]];
 * if (histogramQuantile(0.5, b) !== 0.01) throw new Error("p50");
 * if (Math.abs(histogramQuantile(0.75, b) - 0.055) > 1e-12) throw new Error("p75");
 * if (!Number.isNaN(histogramQuantile(0.5, [[Infinity, 0]]))) throw new Error("empty");
 * ```
 */
export function histogramQuantile(q: number, buckets: Buckets): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError("histogramQuantile: q must be in [0, 1]; got " + q);
  const last = buckets[buckets.length - 1];
  const total = last === undefined ? 0 : last[1];
  if (!(total > 0)) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank && count > 0) {
      if (le === Infinity) return lower;
      if (count === below) return le;
      return lower + (le - lower) * (rank - below) / (count - below);
    }
    if (le !== Infinity) lower = le;
    below = count;
  }
  return lower;
}

/**
 * Per-second rate of a counter that went from `previous` to `next` in
 * `seconds`; a counter that went down was reset, so `next` counts from 0.
 * `NaN` when `seconds` is not positive.
 *
 * @example
 * ```ts
 * import { counterRate } from "./dashboard_math.ts";
 * if (counterRate(100, 300, 2) !== 100 || counterRate(500, 20, 1) !== 20) throw new Error();
 * ```
 */
export function counterRate(previous: number, next: number, seconds: number): number {
  if (!(seconds > 0)) return NaN;
  return (next >= previous ? next - previous : next) / seconds;
}

/**
 * `value` as text safe inside HTML content and quoted attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./dashboard_math.ts";
 * if (escapeHtml(`<a href="x">'&'</a>`) !== "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;") {
 *   throw new Error("escape");
 * }
 * ```
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

/** The source of every function above, for the page's inline script. */
export const DASHBOARD_MATH_SOURCE: string = [
  parsePrometheus,
  sumSamples,
  histogramBuckets,
  bucketDeltas,
  histogramQuantile,
  counterRate,
  escapeHtml,
].map((fn) => fn.toString()).join("\n");
