/**
 * MetricsRegistry: counters, gauges, collected gauges, histograms and the snapshot.
 */
import assert from "node:assert/strict";
import {
  DELAY_BUCKETS_SECONDS,
  mergeSnapshots,
  type MetricFamily,
  MetricsRegistry,
} from "../../core/metrics/mod.ts";

function family(registry: MetricsRegistry, name: string): MetricFamily | undefined {
  return registry.snapshot().find((f) => f.name === name);
}

Deno.test("Counter counts per label set and refuses to go down", () => {
  const metrics = new MetricsRegistry();
  const plain = metrics.counter("stage_started_total", "Stages started.");
  plain.inc();
  plain.inc(undefined, 4);
  assert.equal(plain.get(), 5);
  const byStage = metrics.counter("stage_messages_total", "Messages.", ["stage", "verb"]);
  byStage.inc({ stage: "a", verb: "get" });
  byStage.inc({ verb: "get", stage: "a" }, 2);
  byStage.inc({ stage: "b", verb: "get" });
  assert.equal(byStage.get({ stage: "a", verb: "get" }), 3);
  assert.equal(byStage.get({ stage: "c", verb: "get" }), 0);
  assert.throws(() => plain.inc(undefined, -1), RangeError);
  assert.throws(() => plain.inc(undefined, NaN), RangeError);
  assert.deepEqual(family(metrics, "stage_messages_total")?.samples, [
    { labels: { stage: "a", verb: "get" }, value: 3 },
    { labels: { stage: "b", verb: "get" }, value: 1 },
  ]);
});

Deno.test("Counter keys label sets so that values containing separators do not collide", () => {
  const metrics = new MetricsRegistry();
  const counter = metrics.counter("pairs_total", "Pairs.", ["a", "b"]);
  counter.inc({ a: "x,y", b: "z" });
  counter.inc({ a: "x", b: "y,z" });
  counter.inc({ a: "1:x", b: "" });
  counter.inc({ a: "1", b: "x" });
  assert.equal(family(metrics, "pairs_total")?.samples.length, 4);
});

Deno.test("Counter.delete drops a series from the snapshot", () => {
  const metrics = new MetricsRegistry();
  const counter = metrics.counter("gone_total", "Gone.", ["stage"]);
  counter.inc({ stage: "a" });
  assert.equal(counter.delete({ stage: "a" }), true);
  assert.equal(counter.delete({ stage: "a" }), false);
  assert.deepEqual(family(metrics, "gone_total")?.samples, []);
});

Deno.test("Gauge sets, increments and decrements, and refuses non-finite values", () => {
  const metrics = new MetricsRegistry();
  const gauge = metrics.gauge("stage_sockets", "Open sockets.", ["listen"]);
  const tcp = { listen: "tcp" };
  gauge.inc(tcp, 3);
  gauge.dec(tcp);
  assert.equal(gauge.get(tcp), 2);
  gauge.set(-7.5, tcp);
  assert.equal(gauge.get(tcp), -7.5);
  assert.throws(() => gauge.set(Infinity, tcp), /Gauge "stage_sockets".*Infinity/);
  assert.throws(() => gauge.inc(tcp, NaN), RangeError);
  assert.equal(gauge.get(tcp), -7.5);
});

Deno.test("MetricsRegistry returns the registered metric for the same name, type and labels", () => {
  const metrics = new MetricsRegistry();
  const first = metrics.counter("shared_total", "Shared.", ["stage"]);
  const second = metrics.counter("shared_total", "Other help is ignored.", ["stage"]);
  assert.equal(first, second);
  const h = metrics.histogram("h_seconds", "H.", [1, 2]);
  assert.equal(metrics.histogram("h_seconds", "H.", [1, 2, Infinity]), h);
  assert.equal(metrics.snapshot().length, 2);
  assert.equal(family(metrics, "shared_total")?.help, "Shared.");
});

Deno.test("MetricsRegistry throws a TypeError naming a metric registered differently", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("m_total", "M.", ["stage"]);
  metrics.histogram("h_seconds", "H.", [1, 2]);
  assert.throws(() => metrics.gauge("m_total", "M."), /Metric "m_total".*counter.*gauge/);
  assert.throws(() => metrics.counter("m_total", "M.", ["verb"]), /"m_total".*\{stage\}.*\{verb\}/);
  assert.throws(() => metrics.counter("m_total", "M."), TypeError);
  assert.throws(() => metrics.gaugeFn("m_total", "M.", () => 1), /"m_total".*gaugeFn/);
  assert.throws(() => metrics.histogram("h_seconds", "H.", [1, 3]), /"h_seconds".*buckets/);
});

Deno.test("MetricsRegistry checks metric and label names against the Prometheus syntax", () => {
  const metrics = new MetricsRegistry();
  for (const name of ["", "1abc", "a-b", "a b", "é"]) {
    assert.throws(() => metrics.counter(name, "x"), TypeError, name);
    assert.throws(() => metrics.gaugeFn(name, "x", () => 1), TypeError, name);
  }
  metrics.counter("ns:sub_total", "Colons are allowed in metric names.");
  assert.throws(
    () => metrics.counter("a_total", "x", ["a:b"]),
    /label name "a:b" in metric "a_total"/,
  );
  assert.throws(() => metrics.counter("b_total", "x", ["__reserved"]), TypeError);
  assert.throws(() => metrics.counter("c_total", "x", ["a", "a"]), /Duplicate label name "a"/);
  assert.throws(() => metrics.histogram("d_seconds", "x", [1], ["le"]), /"le" is reserved/);
  assert.deepEqual(metrics.snapshot().map((f) => f.name), ["ns:sub_total"]);
});

Deno.test("Metrics throw a TypeError naming the metric and labels for a wrong label set", () => {
  const metrics = new MetricsRegistry();
  const counter = metrics.counter("l_total", "L.", ["stage"]);
  const plain = metrics.gauge("g", "G.");
  assert.throws(() => counter.inc(), /Metric "l_total" takes labels \{stage\}; got no labels/);
  assert.throws(() => counter.inc({ verb: "x" }), /"l_total".*\{stage\}.*verb="x"/);
  assert.throws(() => counter.inc({ stage: "a", verb: "x" }), /"l_total".*stage="a", verb="x"/);
  assert.throws(() => counter.get({ stage: 1 as unknown as string }), TypeError);
  assert.throws(() => plain.set(1, { stage: "a" }), /Metric "g" takes labels \{\}/);
  plain.set(1, {});
  assert.equal(plain.get(), 1);
});

Deno.test("Histogram counts cumulative buckets, sum and count", () => {
  const metrics = new MetricsRegistry();
  const h = metrics.histogram("d_seconds", "D.", [0.1, 1, 10], ["stage"]);
  const a = { stage: "a" };
  for (const value of [0.05, 0.1, 0.5, 5, 50]) h.observe(value, a);
  assert.equal(h.count(a), 5);
  assert.equal(h.sum(a), 55.65);
  assert.equal(h.count({ stage: "other" }), 0);
  assert.throws(() => h.observe(NaN, a), RangeError);
  assert.deepEqual(family(metrics, "d_seconds")?.samples, [{
    labels: a,
    buckets: [
      { le: 0.1, count: 2 },
      { le: 1, count: 3 },
      { le: 10, count: 4 },
      { le: "+Inf", count: 5 },
    ],
    sum: 55.65,
    count: 5,
  }]);
});

Deno.test("Histogram.quantile interpolates linearly inside the bucket", () => {
  const metrics = new MetricsRegistry();
  const h = metrics.histogram("q_seconds", "Q.", [1, 2, 4]);
  assert.ok(Number.isNaN(h.quantile(0.5)));
  for (let i = 0; i < 10; i++) h.observe(0.5); // (0, 1]
  for (let i = 0; i < 10; i++) h.observe(3); // (2, 4]
  assert.equal(h.quantile(0.25), 0.5); // rank 5 of 10 in [0, 1]
  assert.equal(h.quantile(0.75), 3); // rank 5 of 10 in (2, 4]
  assert.equal(h.quantile(1), 4);
  assert.equal(h.quantile(0), 0);
  h.observe(100); // in +Inf: the highest finite bound
  assert.equal(h.quantile(1), 4);
  assert.throws(() => h.quantile(1.5), /quantile must be in \[0, 1\]; got 1.5/);
});

Deno.test("Histogram refuses buckets that are not finite and strictly increasing", () => {
  const metrics = new MetricsRegistry();
  for (const buckets of [[1, 1], [2, 1], [NaN], [-Infinity, 1], [1, Infinity, 2]]) {
    assert.throws(() => metrics.histogram("b_seconds", "B.", buckets), RangeError, `${buckets}`);
  }
  assert.deepEqual(metrics.histogram("b_seconds", "B.", [1, Infinity]).buckets, [1]);
});

Deno.test("DELAY_BUCKETS_SECONDS span 0.1 ms to 10 s, increasing, about 20 buckets", () => {
  assert.equal(DELAY_BUCKETS_SECONDS[0], 0.0001);
  assert.equal(DELAY_BUCKETS_SECONDS.at(-1), 10);
  assert.ok(DELAY_BUCKETS_SECONDS.length >= 18 && DELAY_BUCKETS_SECONDS.length <= 24);
  for (let i = 1; i < DELAY_BUCKETS_SECONDS.length; i++) {
    const ratio = DELAY_BUCKETS_SECONDS[i]! / DELAY_BUCKETS_SECONDS[i - 1]!;
    assert.ok(ratio > 1.2 && ratio <= 2.5, `ratio ${ratio} at ${i}`);
  }
});

Deno.test("MetricsRegistry.gaugeFn collects at snapshot time until removed", () => {
  const metrics = new MetricsRegistry();
  let depth = 1;
  const queue = metrics.gaugeFn("queue_depth", "Waiting.", () => depth);
  depth = 7;
  assert.deepEqual(family(metrics, "queue_depth")?.samples, [{ labels: {}, value: 7 }]);
  queue.remove();
  queue.remove();
  assert.equal(family(metrics, "queue_depth"), undefined);
  metrics.counter("queue_depth", "The name is free again.");
});

Deno.test("MetricsRegistry.gaugeFn sums label sets reported by several collectors", () => {
  const metrics = new MetricsRegistry();
  using _a = metrics.gaugeFn("sockets", "Open.", () => [
    { labels: { listen: "tcp", codec: "bson" }, value: 2 },
    { labels: { listen: "ws" }, value: 1 },
  ]);
  {
    using _b = metrics.gaugeFn("sockets", "Open.", () => [
      { labels: { codec: "bson", listen: "tcp" }, value: 3 },
    ]);
    assert.deepEqual(family(metrics, "sockets"), {
      name: "sockets",
      help: "Open.",
      type: "gauge",
      samples: [
        { labels: { listen: "tcp", codec: "bson" }, value: 5 },
        { labels: { listen: "ws" }, value: 1 },
      ],
    });
  }
  assert.deepEqual(family(metrics, "sockets")?.samples, [
    { labels: { listen: "tcp", codec: "bson" }, value: 2 },
    { labels: { listen: "ws" }, value: 1 },
  ]);
});

Deno.test("MetricsRegistry reports a failing collector and keeps the rest of the snapshot", () => {
  const errors: [string, unknown][] = [];
  const metrics = new MetricsRegistry({
    onCollectError: (name, error) => errors.push([name, error]),
  });
  metrics.counter("ok_total", "Fine.").inc();
  using _throws = metrics.gaugeFn("broken", "Throws.", () => {
    throw new Error("boom");
  });
  using _nan = metrics.gaugeFn("nan", "NaN.", () => NaN);
  using _label = metrics.gaugeFn(
    "bad_label",
    "Bad label.",
    () => [{ labels: { "a-b": "x" }, value: 1 }],
  );
  using _fine = metrics.gaugeFn("broken", "Throws.", () => 4);
  const snapshot = metrics.snapshot();
  assert.deepEqual(errors.map(([name]) => name), ["broken", "nan", "bad_label"]);
  assert.deepEqual(snapshot.map((f) => [f.name, f.samples.length]), [
    ["ok_total", 1],
    ["broken", 1],
    ["nan", 0],
    ["bad_label", 0],
  ]);
});

Deno.test("MetricsRegistry.snapshot is plain data: structuredClone and JSON keep it whole", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("c_total", "C.", ["k"]).inc({ k: "v" });
  metrics.gauge("g", "G.").set(2.5);
  metrics.histogram("h_seconds", "H.", DELAY_BUCKETS_SECONDS).observe(0.004);
  using _fn = metrics.gaugeFn("f", "F.", () => 3);
  const snapshot = metrics.snapshot();
  assert.deepEqual(structuredClone(snapshot), snapshot);
  assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
  metrics.gauge("g", "G.").set(9); // a snapshot does not follow later changes
  assert.deepEqual(snapshot.find((f) => f.name === "g")?.samples, [{ labels: {}, value: 2.5 }]);
});

Deno.test("MetricsRegistry.counterFn reports a counter read at snapshot time, apart from gaugeFn", () => {
  const metrics = new MetricsRegistry();
  let closed = 3;
  using _closed = metrics.counterFn("stage_socket_closed_total", "Closed.", () => [
    { labels: { reason: "peer" }, value: closed },
  ]);
  closed = 5;
  assert.deepEqual(metrics.snapshot(), [{
    name: "stage_socket_closed_total",
    help: "Closed.",
    type: "counter",
    samples: [{ labels: { reason: "peer" }, value: 5 }],
  }]);
  assert.throws(
    () => metrics.gaugeFn("stage_socket_closed_total", "x", () => 1),
    /collected counter \(counterFn\)/,
  );
  mergeWithMergeSnapshots(metrics);
});

/** mergeSnapshots keeps each part's series apart by its labels and one family per name. */
function mergeWithMergeSnapshots(metrics: MetricsRegistry): void {
  const merged = mergeSnapshots([
    { labels: { process: "0" }, snapshot: metrics.snapshot() },
    { labels: { process: "1" }, snapshot: metrics.snapshot() },
  ]);
  assert.equal(merged.length, 1);
  assert.deepEqual(merged[0]!.samples.map((s) => s.labels), [
    { process: "0", reason: "peer" },
    { process: "1", reason: "peer" },
  ]);
}
