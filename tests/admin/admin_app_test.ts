/**
 * adminApp over fake sources, in-process with `app.request()`.
 */
import assert from "node:assert/strict";
import { adminApp, type AdminSources, AdminUnavailableError } from "../../core/admin/mod.ts";
import { RequestTimeoutError, StageNotFoundError } from "../../core/api/messaging.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../../core/metrics/mod.ts";

const TOKEN = "s3cret-token";

function fakeSources(overrides: Partial<AdminSources> = {}) {
  const calls: { signal: [string, unknown[], number][]; reload: number; drain: number } = {
    signal: [],
    reload: 0,
    drain: 0,
  };
  const sources: AdminSources = {
    health: () => ({ live: true, ready: true, state: "ready" }),
    metricsText: () => "# TYPE stage_queue_depth gauge\nstage_queue_depth 3\n",
    stages: () => [{
      id: "start",
      kind: "script",
      state: "ready",
      instances: 1,
      queueDepth: 3,
      inFlight: 1,
      oldestQueuedMs: 12,
      sockets: 0,
      workers: { total: 2, busy: 1, inFlight: [1, 0] },
    }],
    sockets: () => ({
      open: 1,
      byState: { writing: 1, busy: 0, idle: 0 },
      byStage: { start: 1 },
      closed: { eof: 4 },
      refused: {},
      top: [],
    }),
    tickets: () => [{ stage: "ticket", category: "db", holders: 1, waiting: 2, oldestWaitMs: 5 }],
    routes: () => [{ name: "a" }],
    workers: () => [{ stage: "start", worker: 0 }],
    signal: (target, values, timeoutMs) => {
      calls.signal.push([target, values, timeoutMs]);
      return Promise.resolve({ echoed: values, big: 2n });
    },
    reload: () => {
      calls.reload++;
      return Promise.resolve({ scripts: 2 });
    },
    drain: () => {
      calls.drain++;
      return Promise.resolve();
    },
    ...overrides,
  };
  return { sources, calls };
}

const auth = { authorization: `Bearer ${TOKEN}` };

function post(body: unknown, headers: Record<string, string> = auth): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

Deno.test("adminApp serves every read endpoint as JSON with the token", async () => {
  const { sources } = fakeSources();
  const app = adminApp(sources, { token: TOKEN });
  const expected: Record<string, unknown> = {
    "/stages": await sources.stages(),
    "/sockets": await sources.sockets(),
    "/tickets": await sources.tickets(),
    "/routes": await sources.routes(),
    "/workers": await sources.workers(),
  };
  for (const [path, body] of Object.entries(expected)) {
    const response = await app.request(path, { headers: auth });
    assert.equal(response.status, 200, path);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/, path);
    assert.deepEqual(await response.json(), body, path);
  }
});

Deno.test("adminApp serves /metrics as Prometheus text", async () => {
  const { sources } = fakeSources();
  const response = await adminApp(sources, { token: TOKEN }).request("/metrics", {
    headers: auth,
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  assert.equal(await response.text(), await sources.metricsText());
});

Deno.test("adminApp requires the bearer token on every endpoint but /health", async () => {
  const { sources, calls } = fakeSources();
  const app = adminApp(sources, { token: TOKEN });
  const paths = ["/metrics", "/stages", "/sockets", "/tickets", "/routes", "/workers"];
  const variants: (Record<string, string> | undefined)[] = [
    undefined,
    { authorization: "Bearer wrong" },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Basic ${btoa(`admin:${TOKEN}`)}` },
    { authorization: "Bearer" },
  ];
  for (const headers of variants) {
    for (const path of paths) {
      const response = await app.request(path, headers === undefined ? {} : { headers });
      assert.equal(response.status, 401, `${path} with ${JSON.stringify(headers)}`);
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="stage-admin"');
      const body = await response.json();
      assert.equal(body.error.name, "Unauthorized");
    }
    for (const path of ["/signal", "/reload", "/drain"]) {
      const response = await app.request(path, post({ target: "a" }, headers ?? {}));
      assert.equal(response.status, 401, path);
      await response.body?.cancel();
    }
  }
  assert.deepEqual(calls, { signal: [], reload: 0, drain: 0 }, "an unauthorised call went through");
  const health = await app.request("/health");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { live: true, ready: true, state: "ready" });
  const lower = await app.request("/stages", { headers: { authorization: `bearer ${TOKEN}` } });
  assert.equal(lower.status, 200, "the scheme is case-insensitive");
  await lower.body?.cancel();
});

Deno.test("adminApp without a token serves everything unauthenticated", async () => {
  const { sources, calls } = fakeSources();
  const app = adminApp(sources);
  for (const path of ["/metrics", "/stages", "/sockets", "/tickets", "/routes", "/workers"]) {
    const response = await app.request(path);
    assert.equal(response.status, 200, path);
    await response.body?.cancel();
  }
  const response = await app.request("/signal", post({ target: "calc:add" }, {}));
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(calls.signal.length, 1);
});

Deno.test("adminApp refuses an empty token", () => {
  assert.throws(() => adminApp(fakeSources().sources, { token: "" }), TypeError);
});

Deno.test("adminApp /health is 503 with the state when not ready", async () => {
  for (const state of ["overloaded", "draining", "starting"] as const) {
    const { sources } = fakeSources({ health: () => ({ live: true, ready: false, state }) });
    const response = await adminApp(sources, { token: TOKEN }).request("/health");
    assert.equal(response.status, 503, state);
    assert.deepEqual(await response.json(), { live: true, ready: false, state });
  }
});

Deno.test("adminApp POST /signal passes target, values and timeout and returns the reply", async () => {
  const { sources, calls } = fakeSources();
  const app = adminApp(sources, { token: TOKEN, signalTimeoutMs: 1234 });
  const response = await app.request(
    "/signal",
    post({ target: "calc:add", values: [1, 2], timeout: 250 }),
  );
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { reply: { echoed: [1, 2], big: "2" } });
  const defaults = await app.request("/signal", post({ target: "calc:ping" }));
  assert.equal(defaults.status, 200);
  await defaults.body?.cancel();
  assert.deepEqual(calls.signal, [["calc:add", [1, 2], 250], ["calc:ping", [], 1234]]);
});

Deno.test("adminApp POST /signal answers 400 naming the field for a bad body", async () => {
  const { sources, calls } = fakeSources();
  const app = adminApp(sources, { token: TOKEN, maxSignalTimeoutMs: 10_000 });
  const cases: [unknown, string | undefined, RegExp][] = [
    ["{not json", undefined, /not JSON/],
    ["", undefined, /not JSON/],
    [[1, 2], undefined, /JSON object/],
    [null, undefined, /JSON object/],
    [{}, "target", /Field "target"/],
    [{ target: 42 }, "target", /found 42/],
    [{ target: "  " }, "target", /non-empty/],
    [{ target: "a", values: "x" }, "values", /Field "values": expected an array/],
    [{ target: "a", timeout: "5" }, "timeout", /Field "timeout"/],
    [{ target: "a", timeout: -1 }, "timeout", /Field "timeout"/],
    [{ target: "a", timeout: 20_000 }, "timeout", /10000/],
  ];
  for (const [body, field, message] of cases) {
    const response = await app.request("/signal", post(body));
    assert.equal(response.status, 400, JSON.stringify(body));
    const { error } = await response.json();
    assert.equal(error.field, field, JSON.stringify(body));
    assert.match(error.message, message);
  }
  assert.equal(calls.signal.length, 0);
  const big = await adminApp(sources, { maxBodyBytes: 16 }).request(
    "/signal",
    post({ target: "a".repeat(100) }, {}),
  );
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.name, "PayloadTooLarge");
});

Deno.test("adminApp POST /signal maps timeouts to 504, missing targets to 404, handler errors to 502", async () => {
  const cases: [Error, number][] = [
    [new RequestTimeoutError('No reply to "calc:spin" in 100 ms'), 504],
    [new StageNotFoundError('No stage "nope"'), 404],
    [new RangeError("the handler threw"), 502],
    [new AdminUnavailableError("not wired"), 501],
  ];
  for (const [error, status] of cases) {
    const { sources } = fakeSources({ signal: () => Promise.reject(error) });
    const response = await adminApp(sources).request("/signal", post({ target: "calc:x" }, {}));
    assert.equal(response.status, status, error.name);
    assert.deepEqual(await response.json(), {
      error: { name: error.name, message: error.message },
    });
  }
});

Deno.test("adminApp POST /reload and /drain call their sources", async () => {
  const { sources, calls } = fakeSources();
  const app = adminApp(sources, { token: TOKEN });
  const reload = await app.request("/reload", { method: "POST", headers: auth });
  assert.equal(reload.status, 200);
  assert.deepEqual(await reload.json(), { reloaded: true, result: { scripts: 2 } });
  const drain = await app.request("/drain", { method: "POST", headers: auth });
  assert.equal(drain.status, 202);
  assert.deepEqual(await drain.json(), { draining: true, result: null });
  assert.equal(calls.reload, 1);
  assert.equal(calls.drain, 1);
});

Deno.test("adminApp answers failures, wrong methods and unknown paths with JSON errors", async () => {
  const { sources } = fakeSources({
    stages: () => {
      throw new Error("scheduler exploded");
    },
    routes: () => {
      throw new AdminUnavailableError('The admin source "routes" is not wired');
    },
    reload: () => Promise.reject(new TypeError("script syntax error")),
  });
  const app = adminApp(sources);
  const cases: [string, RequestInit, number, string][] = [
    ["/stages", {}, 500, "Error"],
    ["/routes", {}, 501, "AdminUnavailableError"],
    ["/reload", { method: "POST" }, 500, "TypeError"],
    ["/stages", { method: "POST" }, 405, "MethodNotAllowed"],
    ["/signal", {}, 405, "MethodNotAllowed"],
    ["/nope", {}, 404, "NotFound"],
  ];
  for (const [path, init, status, name] of cases) {
    const response = await app.request(path, init);
    assert.equal(response.status, status, `${init.method ?? "GET"} ${path}`);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal((await response.json()).error.name, name, path);
  }
});
