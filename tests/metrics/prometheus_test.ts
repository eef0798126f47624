/**
 * renderPrometheus: the text exposition format 0.0.4.
 */
import assert from "node:assert/strict";
import {
  MetricsRegistry,
  type MetricsSnapshot,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
} from "../../core/metrics/mod.ts";

Deno.test("renderPrometheus writes HELP, TYPE and samples for every metric type", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("stage_messages_total", "Messages handled.", ["stage", "verb"])
    .inc({ stage: "login", verb: "get" }, 3);
  metrics.gauge("stage_sockets", "Open sockets.").set(2);
  using _depth = metrics.gaugeFn("stage_queue_depth", "Waiting.", () => [
    { labels: { stage: "login" }, value: 4 },
  ]);
  const delay = metrics.histogram("stage_delay_seconds", "Dispatch delay.", [0.001, 0.01]);
  delay.observe(0.0005);
  delay.observe(0.25);
  assert.equal(
    renderPrometheus(metrics.snapshot()),
    [
      "# HELP stage_messages_total Messages handled.",
      "# TYPE stage_messages_total counter",
      'stage_messages_total{stage="login",verb="get"} 3',
      "# HELP stage_sockets Open sockets.",
      "# TYPE stage_sockets gauge",
      "stage_sockets 2",
      "# HELP stage_queue_depth Waiting.",
      "# TYPE stage_queue_depth gauge",
      'stage_queue_depth{stage="login"} 4',
      "# HELP stage_delay_seconds Dispatch delay.",
      "# TYPE stage_delay_seconds histogram",
      'stage_delay_seconds_bucket{le="0.001"} 1',
      'stage_delay_seconds_bucket{le="0.01"} 1',
      'stage_delay_seconds_bucket{le="+Inf"} 2',
      "stage_delay_seconds_sum 0.2505",
      "stage_delay_seconds_count 2",
      "",
    ].join("\n"),
  );
  assert.match(PROMETHEUS_CONTENT_TYPE, /^text\/plain; version=0\.0\.4/);
});

Deno.test("renderPrometheus escapes backslash, quote and newline in label values and help", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("odd_total", 'Help with \\ and\nnewline and "quotes".', ["path"])
    .inc({ path: 'C:\\dir\n"x"' });
  assert.equal(
    renderPrometheus(metrics.snapshot()),
    [
      '# HELP odd_total Help with \\\\ and\\nnewline and "quotes".',
      "# TYPE odd_total counter",
      'odd_total{path="C:\\\\dir\\n\\"x\\""} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("renderPrometheus adds const labels before each sample's own, le last", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("c_total", "C.").inc();
  metrics.histogram("h_seconds", "H.", [1], ["stage"]).observe(2, { stage: "a" });
  const text = renderPrometheus(metrics.snapshot(), { process: "0", host: 'a"b' });
  assert.deepEqual(text.split("\n").filter((line) => !line.startsWith("#")), [
    'c_total{process="0",host="a\\"b"} 1',
    'h_seconds_bucket{process="0",host="a\\"b",stage="a",le="1"} 0',
    'h_seconds_bucket{process="0",host="a\\"b",stage="a",le="+Inf"} 1',
    'h_seconds_sum{process="0",host="a\\"b",stage="a"} 2',
    'h_seconds_count{process="0",host="a\\"b",stage="a"} 1',
    "",
  ]);
});

Deno.test("renderPrometheus refuses invalid or clashing const labels", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("c_total", "C.", ["stage"]).inc({ stage: "a" });
  assert.throws(() => renderPrometheus(metrics.snapshot(), { "bad-name": "x" }), /"bad-name"/);
  assert.throws(
    () => renderPrometheus(metrics.snapshot(), { stage: "x" }),
    /Const label "stage" is also a label of metric "c_total"/,
  );
});

Deno.test("renderPrometheus handles empty snapshots, empty families and non-finite numbers", () => {
  assert.equal(renderPrometheus([]), "");
  const snapshot: MetricsSnapshot = [
    { name: "empty", help: "", type: "gauge", samples: [] },
    {
      name: "odd",
      help: "Odd values.",
      type: "gauge",
      samples: [
        { labels: { v: "inf" }, value: Infinity },
        { labels: { v: "-inf" }, value: -Infinity },
        { labels: { v: "nan" }, value: NaN },
        { labels: { v: "small" }, value: 1e-7 },
      ],
    },
  ];
  assert.equal(
    renderPrometheus(snapshot),
    [
      "# HELP empty ",
      "# TYPE empty gauge",
      "# HELP odd Odd values.",
      "# TYPE odd gauge",
      'odd{v="inf"} +Inf',
      'odd{v="-inf"} -Inf',
      'odd{v="nan"} NaN',
      'odd{v="small"} 1e-7',
      "",
    ].join("\n"),
  );
});
