/**
 * The dashboard's pure pieces (Prometheus parsing, rates, quantiles, escaping),
 * the same functions once inlined into the page, and the `/dashboard` route.
 */
import assert from "node:assert/strict";
import { adminApp, type AdminSources, emptySocketsReport } from "../../core/admin/mod.ts";
import {
  bucketDeltas,
  counterRate,
  DASHBOARD_MATH_SOURCE,
  escapeHtml,
  histogramBuckets,
  histogramQuantile,
  parsePrometheus,
  sumSamples,
} from "../../core/admin/dashboard_math.ts";
import {
  DASHBOARD_PAGE,
  DASHBOARD_SCRIPT,
  DASHBOARD_STYLE,
  dashboardContentSecurityPolicy,
} from "../../core/admin/dashboard_page.ts";
import { MetricsRegistry, renderPrometheus } from "../../core/metrics/mod.ts";

Deno.test("parsePrometheus reads what renderPrometheus writes, escapes and const labels included", () => {
  const metrics = new MetricsRegistry();
  metrics.counter("m_total", "M.", ["stage"]).inc({ stage: 'a "q" \\ \n b' }, 3);
  metrics.counter("m_total", "M.", ["stage"]).inc({ stage: "plain" }, 4);
  metrics.gauge("g", "G.").set(-1.5);
  metrics.histogram("h_seconds", "H.", [0.1]).observe(0.05);
  const samples = parsePrometheus(renderPrometheus(metrics.snapshot(), { process: "2" }));
  assert.deepEqual(
    samples.map((s) => [s.name, { ...s.labels }, s.value]),
    [
      ["m_total", { process: "2", stage: 'a "q" \\ \n b' }, 3],
      ["m_total", { process: "2", stage: "plain" }, 4],
      ["g", { process: "2" }, -1.5],
      ["h_seconds_bucket", { process: "2", le: "0.1" }, 1],
      ["h_seconds_bucket", { process: "2", le: "+Inf" }, 1],
      ["h_seconds_sum", { process: "2" }, 0.05],
      ["h_seconds_count", { process: "2" }, 1],
    ],
  );
});

Deno.test("parsePrometheus skips comments, blank and broken lines and keeps special values", () => {
  const text = [
    "# HELP x y",
    "",
    "a 1 1700000000000",
    "b{} NaN",
    'c{x="1",} +Inf',
    'd{x="unterminated} 1',
    "e notanumber",
    "f",
    "9bad 1",
    "g -Inf",
  ].join("\n");
  const samples = parsePrometheus(text);
  assert.deepEqual(samples.map((s) => s.name), ["a", "b", "c", "g"]);
  assert.equal(samples[0]?.value, 1, "a timestamp after the value is ignored");
  assert.ok(Number.isNaN(samples[1]?.value));
  assert.equal(samples[2]?.value, Infinity);
  assert.equal(samples[2]?.labels.x, "1");
  assert.equal(samples[3]?.value, -Infinity);
});

Deno.test("sumSamples sums across extra labels and groups by the labels asked for", () => {
  const samples = parsePrometheus([
    'c{stage="a",process="0"} 1',
    'c{stage="a",process="1"} 2',
    'c{stage="b",process="0"} 5',
    'c{stage="__proto__"} 7',
    'other{stage="a"} 100',
  ].join("\n"));
  assert.equal(sumSamples(samples, "c")[""], 15);
  const byStage = sumSamples(samples, "c", ["stage"]);
  assert.equal(byStage.a, 3);
  assert.equal(byStage.b, 5);
  assert.equal(byStage["__proto__"], 7, "a stage id is only a key");
  const byBoth = sumSamples(samples, "c", ["stage", "process"]);
  assert.equal(byBoth["a\u001f1"], 2);
  assert.equal(byBoth["__proto__\u001f"], 7);
  assert.deepEqual(Object.keys(sumSamples(samples, "missing")), []);
});

Deno.test("histogramQuantile of bucket deltas gives the percentiles of the latest observations", () => {
  const metrics = new MetricsRegistry();
  const bounds = [0.001, 0.01, 0.1, 1];
  const delay = metrics.histogram("d_seconds", "D.", bounds, ["stage"]);
  // Old observations, all slow: they must not show in the deltas.
  for (let i = 0; i < 1000; i++) delay.observe(0.5, { stage: "old" });
  const before = histogramBuckets(
    parsePrometheus(renderPrometheus(metrics.snapshot())),
    "d_seconds",
  );
  // New: 90 fast (≤ 1 ms) across two stages, 10 at 50 ms.
  for (let i = 0; i < 60; i++) delay.observe(0.0005, { stage: "a" });
  for (let i = 0; i < 30; i++) delay.observe(0.0005, { stage: "b" });
  for (let i = 0; i < 10; i++) delay.observe(0.05, { stage: "a" });
  const after = histogramBuckets(
    parsePrometheus(renderPrometheus(metrics.snapshot())),
    "d_seconds",
  );
  assert.deepEqual(after.map(([le]) => le), [...bounds, Infinity]);
  const deltas = bucketDeltas(before, after);
  assert.deepEqual(deltas, [[0.001, 90], [0.01, 90], [0.1, 100], [1, 100], [Infinity, 100]]);
  assert.ok(Math.abs(histogramQuantile(0.5, deltas) - 0.001 * 50 / 90) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.95, deltas) - (0.01 + 0.09 * 5 / 10)) < 1e-12);
  assert.equal(histogramQuantile(1, deltas), 0.1);
  // Everything over the largest bound: the largest finite bound.
  assert.equal(histogramQuantile(0.5, [[0.1, 0], [1, 0], [Infinity, 4]]), 1);
  assert.ok(Number.isNaN(histogramQuantile(0.5, [[0.1, 0], [Infinity, 0]])));
  assert.ok(Number.isNaN(histogramQuantile(0.5, [])));
  assert.throws(() => histogramQuantile(1.5, deltas), /q must be in \[0, 1\]; got 1\.5/);
});

Deno.test("bucketDeltas and counterRate treat a counter that went down as restarted", () => {
  assert.deepEqual(bucketDeltas([[0.1, 10], [Infinity, 20]], [[0.1, 1], [Infinity, 3]]), [
    [0.1, 1],
    [Infinity, 3],
  ]);
  assert.deepEqual(bucketDeltas([], [[0.1, 2], [Infinity, 2]]), [[0.1, 2], [Infinity, 2]]);
  assert.equal(counterRate(10, 40, 1.5), 20);
  assert.equal(counterRate(1000, 30, 1), 30);
  assert.ok(Number.isNaN(counterRate(1, 2, 0)));
});

Deno.test("escapeHtml leaves no markup or attribute break-out in config strings", () => {
  const hostile = `"><img src=x onerror=alert(1)>'&`;
  const escaped = escapeHtml(hostile);
  assert.equal(escaped, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;");
  assert.doesNotMatch(escaped, /[<>"']/);
  assert.equal(escapeHtml(42), "42");
  assert.equal(escapeHtml(undefined), "undefined");
});

Deno.test("DASHBOARD_MATH_SOURCE runs standalone, as the page runs it", () => {
  const inlined = new Function(
    `${DASHBOARD_MATH_SOURCE}\nreturn { parsePrometheus, sumSamples, histogramBuckets, ` +
      `bucketDeltas, histogramQuantile, counterRate, escapeHtml };`,
  )() as {
    parsePrometheus: typeof parsePrometheus;
    sumSamples: typeof sumSamples;
    histogramBuckets: typeof histogramBuckets;
    histogramQuantile: typeof histogramQuantile;
    escapeHtml: typeof escapeHtml;
  };
  const text = 'h_bucket{s="a",le="0.01"} 5\nh_bucket{s="a",le="+Inf"} 10\nc{s="a"} 3\n';
  const samples = inlined.parsePrometheus(text);
  assert.equal(samples.length, 3);
  assert.equal(inlined.sumSamples(samples, "c", ["s"]).a, 3);
  assert.equal(inlined.histogramQuantile(0.5, inlined.histogramBuckets(samples, "h")), 0.01);
  assert.equal(inlined.escapeHtml("<b>"), "&lt;b&gt;");
  // The whole page script parses (it is not run here: it needs a DOM).
  new Function(DASHBOARD_SCRIPT);
});

const sources: AdminSources = {
  health: () => ({ live: true, ready: true, state: "ready" }),
  metricsText: () => "",
  stages: () => [],
  sockets: () => emptySocketsReport(),
  tickets: () => [],
  routes: () => [],
  workers: () => [],
  signal: () => Promise.reject(new Error("unused")),
  reload: () => Promise.reject(new Error("unused")),
  drain: () => Promise.reject(new Error("unused")),
};

async function hashOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `'sha256-${btoa(String.fromCharCode(...new Uint8Array(digest)))}'`;
}

Deno.test("adminApp serves /dashboard without the token, uncached, under a hash-only CSP", async () => {
  const app = adminApp(sources, { token: "secret" });
  const response = await app.request("/dashboard");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-store");
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  const html = await response.text();
  assert.equal(html, DASHBOARD_PAGE);
  assert.doesNotMatch(html, /secret/);

  // The hashes in the policy are those of the page's one script and one style.
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
  assert.deepEqual(scripts, [DASHBOARD_SCRIPT]);
  assert.deepEqual(styles, [DASHBOARD_STYLE]);
  const csp = response.headers.get("content-security-policy") ?? "";
  assert.equal(csp, await dashboardContentSecurityPolicy());
  const directives = Object.fromEntries(
    csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...v]) => [name, v.join(" ")]),
  );
  assert.equal(directives["default-src"], "'none'");
  assert.equal(directives["script-src"], await hashOf(DASHBOARD_SCRIPT));
  assert.equal(directives["style-src"], await hashOf(DASHBOARD_STYLE));
  assert.equal(directives["connect-src"], "'self'");
  assert.equal(directives["frame-ancestors"], "'none'");
  assert.doesNotMatch(csp, /unsafe/);
  // No inline handlers or style attributes, which a hash policy would block anyway.
  assert.doesNotMatch(html, /\son[a-z]+=|\sstyle=/);
});

Deno.test("adminApp redirects / to the dashboard and keeps the data endpoints locked", async () => {
  const app = adminApp(sources, { token: "secret" });
  const root = await app.request("/");
  assert.equal(root.status, 302);
  assert.equal(root.headers.get("location"), "./dashboard");
  const post = await app.request("/dashboard", {
    method: "POST",
    headers: { authorization: "Bearer secret" },
  });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET");
  await post.body?.cancel();
  const stages = await app.request("/stages");
  assert.equal(stages.status, 401);
  await stages.body?.cancel();
});
