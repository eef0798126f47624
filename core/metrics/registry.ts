/**
 * One registry per process for every metric its stages keep.
 *
 * @module
 */
import { checkLabelName, checkMetricName } from "./_series.ts";
import { Counter } from "./counter.ts";
import { Gauge } from "./gauge.ts";
import { Histogram } from "./histogram.ts";
import type { Labels, MetricsSnapshot, ValueFamily, ValueSample } from "./snapshot.ts";

/** What a {@link MetricsRegistry.gaugeFn} collector returns: one value, or labelled values. */
export type GaugeCollector = () => number | Array<{ labels: Labels; value: number }>;

/** A registered collector; removing it (or disposing) takes its samples out of snapshots. */
export interface MetricRegistration extends Disposable {
  /** Unregisters the collector; calling it twice is harmless. */
  remove(): void;
}

/** Options of a {@link MetricsRegistry}. */
export interface MetricsRegistryOptions {
  /**
   * A `gaugeFn` collector threw or returned something other than finite values
   * with valid labels. Its samples are left out of that snapshot; the rest of
   * the snapshot is unaffected. Wire this to the logger.
   */
  onCollectError?(name: string, error: unknown): void;
}

/**
 * Gauges (or counters kept elsewhere) computed at snapshot time: any number of
 * collectors share one name.
 */
class CollectedGauge {
  readonly name: string;
  readonly help: string;
  readonly type: "gauge" | "counter";
  readonly collectors = new Set<{ collect: GaugeCollector }>();

  constructor(name: string, help: string, type: "gauge" | "counter" = "gauge") {
    checkMetricName(name);
    this.name = name;
    this.help = help;
    this.type = type;
  }

  family(onError: (name: string, error: unknown) => void): ValueFamily {
    const merged = new Map<string, ValueSample>();
    for (const { collect } of this.collectors) {
      let samples: ValueSample[];
      try {
        samples = this.#validate(collect());
      } catch (error) {
        onError(this.name, error);
        continue;
      }
      // Two collectors reporting one label set (two stages' sockets) add up.
      for (const sample of samples) {
        const key = JSON.stringify(Object.entries(sample.labels).sort());
        const found = merged.get(key);
        if (found === undefined) merged.set(key, sample);
        else found.value += sample.value;
      }
    }
    return { name: this.name, help: this.help, type: this.type, samples: [...merged.values()] };
  }

  #validate(result: ReturnType<GaugeCollector>): ValueSample[] {
    const list = typeof result === "number" ? [{ labels: {}, value: result }] : result;
    if (!Array.isArray(list)) {
      throw new TypeError(`Collector of gauge "${this.name}" returned ${typeof list}`);
    }
    return list.map(({ labels, value }) => {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new RangeError(`Collector of gauge "${this.name}" returned the value ${value}`);
      }
      const copy: Labels = {};
      for (const [label, text] of Object.entries(labels ?? {})) {
        checkLabelName(`gauge "${this.name}"`, label);
        if (typeof text !== "string") {
          throw new TypeError(`Label ${label} of gauge "${this.name}" is not a string: ${text}`);
        }
        copy[label] = text;
      }
      return { labels: copy, value };
    });
  }
}

type Metric = Counter | Gauge | Histogram | CollectedGauge;

function describe(metric: Metric): string {
  if (metric instanceof CollectedGauge) {
    return metric.type === "gauge"
      ? "a collected gauge (gaugeFn)"
      : "a collected counter (counterFn)";
  }
  const kind = metric instanceof Counter
    ? "a counter"
    : metric instanceof Gauge
    ? "a gauge"
    : "a histogram";
  const buckets = metric instanceof Histogram ? ` with buckets [${metric.buckets}]` : "";
  return `${kind} with labels {${metric.labelNames.join(", ")}}${buckets}`;
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

function same(a: Metric, b: Metric): boolean {
  if (a.constructor !== b.constructor) return false;
  if (a instanceof CollectedGauge) return a.type === (b as CollectedGauge).type;
  if (!sameList(a.labelNames, (b as typeof a).labelNames)) return false;
  return !(a instanceof Histogram) || sameList(a.buckets, (b as Histogram).buckets);
}

/**
 * Named counters, gauges and histograms with a plain-data snapshot.
 *
 * Asking again for a name with the same type, label names (and buckets) returns
 * the metric already registered, so several stages in one process share it; the
 * first registration's help text is kept.
 *
 * @example
 * ```ts
 * import { MetricsRegistry, renderPrometheus } from "./mod.ts";
 * const metrics = new MetricsRegistry();
 * const served = metrics.counter("stage_messages_total", "Messages handled.", ["stage"]);
 * served.inc({ stage: "login" });
 * const queue: string[] = ["a", "b"];
 * using _depth = metrics.gaugeFn("stage_queue_depth", "Messages waiting.", () => queue.length);
 * const snapshot = metrics.snapshot();
 * const depth = structuredClone(snapshot).find((family) => family.name === "stage_queue_depth");
 * if (depth?.type !== "gauge" || depth.samples[0]?.value !== 2) throw new Error("no queue depth");
 * if (!renderPrometheus(snapshot).includes('stage_messages_total{stage="login"} 1')) {
 *   throw new Error("counter not rendered");
 * }
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Metric>();
  #onCollectError: (name: string, error: unknown) => void;

  constructor(options: MetricsRegistryOptions = {}) {
    this.#onCollectError = options.onCollectError ?? (() => {});
  }

  /**
   * The counter `name`, registered on first use.
   *
   * @throws {TypeError} invalid name or label names, or `name` is registered
   * with another type or other label names.
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(new Counter(name, help, labelNames));
  }

  /** The gauge `name`, registered on first use; throws like {@link MetricsRegistry.counter}. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register(new Gauge(name, help, labelNames));
  }

  /**
   * The histogram `name` with finite, increasing upper `buckets` (`+Inf` is
   * implied), registered on first use; throws like {@link MetricsRegistry.counter},
   * also when `name` is registered with other buckets.
   *
   * @throws {RangeError} `buckets` are not finite and strictly increasing.
   */
  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.#register(new Histogram(name, help, buckets, labelNames));
  }

  /**
   * Adds a gauge computed when a snapshot is taken (queue depth, open sockets).
   * Several collectors may share a name; label sets reported by more than one
   * are summed. Remove the registration when its owner goes away.
   *
   * @throws {TypeError} invalid name, or `name` is registered as another kind.
   */
  gaugeFn(name: string, help: string, collect: GaugeCollector): MetricRegistration {
    return this.#collected(new CollectedGauge(name, help), collect);
  }

  /**
   * Adds a counter whose value is kept elsewhere (a total some component
   * counts) and read when a snapshot is taken; otherwise as {@link gaugeFn}.
   * The collector must only ever return growing values (or restart from 0
   * when its owner does, which Prometheus reads as a counter reset).
   *
   * @throws {TypeError} invalid name, or `name` is registered as another kind.
   */
  counterFn(name: string, help: string, collect: GaugeCollector): MetricRegistration {
    return this.#collected(new CollectedGauge(name, help, "counter"), collect);
  }

  #collected(metric: CollectedGauge, collect: GaugeCollector): MetricRegistration {
    const name = metric.name;
    const gauge = this.#register(metric);
    const entry = { collect };
    gauge.collectors.add(entry);
    const remove = () => {
      gauge.collectors.delete(entry);
      if (gauge.collectors.size === 0 && this.#metrics.get(name) === gauge) {
        this.#metrics.delete(name);
      }
    };
    return { remove, [Symbol.dispose]: remove };
  }

  /** Every metric now, in registration order, as plain data. */
  snapshot(): MetricsSnapshot {
    const families: MetricsSnapshot = [];
    for (const metric of this.#metrics.values()) {
      families.push(
        metric instanceof CollectedGauge ? metric.family(this.#onCollectError) : metric.family(),
      );
    }
    return families;
  }

  #register<T extends Metric>(candidate: T): T {
    const existing = this.#metrics.get(candidate.name);
    if (existing === undefined) {
      this.#metrics.set(candidate.name, candidate);
      return candidate;
    }
    if (same(existing, candidate)) return existing as T;
    throw new TypeError(
      `Metric "${candidate.name}" is already registered as ${
        describe(existing)
      }; cannot register it as ${describe(candidate)}`,
    );
  }
}
