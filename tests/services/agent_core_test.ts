/** Agent with a fake HttpClient and a ManualClock: results, limits, queue deadlines, errors, stop. */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type { AgentConfig } from "../../core/config/mod.ts";
import { MetricsRegistry } from "../../core/metrics/mod.ts";
import type { AgentResult } from "../../core/services/agent_request.ts";
import { Agent } from "../../core/services/agent_service.ts";
import {
  type HttpClient,
  HttpClientError,
  type HttpSendOptions,
} from "../../core/services/http_client.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const log = getLogger(["stage", "test"]);

const config = (overrides: Partial<AgentConfig> = {}): AgentConfig => ({
  userAgent: "bot/1",
  timeout: 1000,
  concurrency: 2,
  queue: 2,
  maxBody: 1024,
  ...overrides,
});

interface Call {
  request: Request;
  options: HttpSendOptions;
  respond(response: Response): void;
  fail(error: unknown): void;
}

/** A client whose exchanges wait until the test answers them. */
function heldClient(): HttpClient & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    send(request, options) {
      return new Promise((respond, fail) => calls.push({ request, options, respond, fail }));
    },
  };
}

function collect(): { results: AgentResult[]; deliver(result: AgentResult): void } {
  const results: AgentResult[] = [];
  return { results, deliver: (result) => results.push(result) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Agent answers with status, effective URL, headers, cookies, content and time", async () => {
  const clock = new ManualClock();
  const http: HttpClient = {
    send(request) {
      assert.equal(request.headers.get("user-agent"), "bot/1");
      clock.advance(25);
      const headers = new Headers({ "content-type": "text/plain; charset=utf-8", "x-a": "1" });
      headers.append("set-cookie", "s=1; Path=/");
      headers.append("set-cookie", "t=2");
      return Promise.resolve(new Response("héllo", { status: 201, headers }));
    },
  };
  const agent = new Agent({ id: "web", config: config(), clock, log, http });
  const { results, deliver } = collect();
  agent.submit({ url: "http://h.test/x", extra: { n: 1 } }, deliver);
  await settle();
  assert.deepEqual(results, [{
    url: "http://h.test/x",
    status: 201,
    effective_url: "http://h.test/x",
    redirect_url: "",
    cookie: ["s=1; Path=/", "t=2"],
    header: { "content-type": "text/plain; charset=utf-8", "x-a": "1" },
    extra: { n: 1 },
    data: { type: "text/plain", length: 6, content: "héllo", charset: "utf-8", time: 25 },
  }]);
  await agent.stop();
});

Deno.test("Agent reports the resolved Location of a 3xx it did not follow", async () => {
  const http: HttpClient = {
    send: () =>
      Promise.resolve(new Response(null, { status: 302, headers: { location: "../b?c=1" } })),
  };
  const agent = new Agent({ id: "web", config: config(), clock: new ManualClock(), log, http });
  const { results, deliver } = collect();
  agent.submit({ url: "http://h.test/a/x", redirect: "manual" }, deliver);
  await settle();
  assert.equal(results[0]?.status, 302);
  assert.equal(results[0]?.redirect_url, "http://h.test/b?c=1");
  assert.deepEqual(results[0]?.data.content, new Uint8Array(0));
  await agent.stop();
});

Deno.test("Agent keeps at most `concurrency` in flight, queues FIFO, and answers busy beyond the queue", async () => {
  const http = heldClient();
  const metrics = new MetricsRegistry();
  const agent = new Agent({
    id: "web",
    config: config(),
    clock: new ManualClock(),
    log,
    http,
    metrics,
  });
  const { results, deliver } = collect();
  for (let i = 0; i < 5; i++) agent.submit({ url: `http://h.test/${i}`, extra: i }, deliver);
  assert.equal(http.calls.length, 2);
  assert.equal(agent.waiting, 2);
  assert.equal(results.length, 1, "the fifth finds the queue full");
  assert.equal(results[0]?.error?.code, "busy");
  assert.equal(results[0]?.extra, 4);
  assert.match(results[0]!.error!.message, /2 requests in flight and 2 waiting/);

  http.calls[1]!.respond(new Response("1"));
  await settle();
  assert.deepEqual(http.calls.map((call) => new URL(call.request.url).pathname), [
    "/0",
    "/1",
    "/2",
  ]);
  http.calls[0]!.respond(new Response("0"));
  await settle();
  assert.equal(http.calls[3]?.request.url, "http://h.test/3");
  http.calls[2]!.respond(new Response("2"));
  http.calls[3]!.respond(new Response("3"));
  await settle();
  assert.deepEqual(results.map((result) => result.extra), [4, 1, 0, 2, 3]);
  const family = metrics.snapshot().find((f) => f.name === "stage_agent_requests_total");
  assert.deepEqual(
    family?.type === "counter" ? family.samples.map((s) => [s.labels.result, s.value]) : [],
    [["busy", 1], ["ok", 4]],
  );
  await agent.stop();
  assert.equal(metrics.snapshot().find((f) => f.name === "stage_agent_in_flight"), undefined);
});

Deno.test("Agent counts the queue wait in the timeout: a request whose time ran out is not sent", async () => {
  const clock = new ManualClock();
  const http = heldClient();
  const agent = new Agent({
    id: "web",
    config: config({ concurrency: 1, timeout: 100 }),
    clock,
    log,
    http,
  });
  const { results, deliver } = collect();
  agent.submit({ url: "http://h.test/first" }, deliver);
  agent.submit({ url: "http://h.test/late" }, deliver);
  agent.submit({ url: "http://h.test/patient", timeout: 500 }, deliver);
  assert.equal(http.calls[0]?.options.timeoutMs, 100);
  clock.advance(150);
  http.calls[0]!.respond(new Response("ok"));
  await settle();
  assert.deepEqual(results.map((r) => [r.url, r.error?.code]), [
    ["http://h.test/first", undefined],
    ["http://h.test/late", "timeout"],
  ]);
  assert.match(results[1]!.error!.message, /waiting for a slot/);
  assert.equal(http.calls.length, 2, "the late request was skipped, the patient one sent");
  assert.equal(http.calls[1]?.options.timeoutMs, 350, "with what is left of its 500 ms");
  http.calls[1]!.respond(new Response("ok"));
  await settle();
  await agent.stop();
});

Deno.test("Agent turns client failures into error results with codes", async () => {
  const failures: [unknown, string][] = [
    [new HttpClientError("dns", "dns error: no such name"), "dns"],
    [new HttpClientError("refused", "Connection refused"), "refused"],
    [new HttpClientError("network", "connection reset"), "network"],
    [new DOMException("The operation was aborted due to timeout", "TimeoutError"), "timeout"],
  ];
  for (const [error, code] of failures) {
    const http: HttpClient = { send: () => Promise.reject(error) };
    const agent = new Agent({ id: "web", config: config(), clock: new ManualClock(), log, http });
    const { results, deliver } = collect();
    agent.submit({ url: "http://h.test/", extra: "x" }, deliver);
    await settle();
    assert.equal(results.length, 1);
    assert.equal(results[0]!.status, 0);
    assert.equal(results[0]!.error?.code, code);
    assert.equal(results[0]!.error?.name, "AgentError");
    assert.match(results[0]!.error!.message, /^http:\/\/h\.test\/: /);
    assert.equal(results[0]!.extra, "x");
    await agent.stop();
  }
});

Deno.test("Agent fails a body over max_body with too_large and one that breaks with network", async () => {
  const bodies = [
    new Response("x".repeat(2000)),
    new Response(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(10));
          controller.error(new TypeError("connection reset"));
        },
      }),
    ),
  ];
  const http: HttpClient = { send: () => Promise.resolve(bodies.shift()!) };
  const agent = new Agent({ id: "web", config: config(), clock: new ManualClock(), log, http });
  const { results, deliver } = collect();
  agent.submit("http://h.test/big", deliver);
  agent.submit("http://h.test/broken", deliver);
  await settle();
  const byUrl = Object.fromEntries(results.map((r) => [r.url, r.error]));
  assert.equal(byUrl["http://h.test/big"]?.code, "too_large");
  assert.match(byUrl["http://h.test/big"]!.message, /larger than max_body \(1024 bytes\)/);
  assert.equal(byUrl["http://h.test/broken"]?.code, "network");
  assert.match(byUrl["http://h.test/broken"]!.message, /connection reset/);
  await agent.stop();
});

Deno.test("Agent.stop aborts requests in flight and answers waiting ones and later ones with stopped", async () => {
  const http = heldClient();
  const agent = new Agent({
    id: "web",
    config: config({ concurrency: 1 }),
    clock: new ManualClock(),
    log,
    http: {
      send(request, options) {
        const sent = http.send(request, options);
        options.signal.addEventListener("abort", () => http.calls[0]!.fail(options.signal.reason));
        return sent;
      },
    },
  });
  const { results, deliver } = collect();
  agent.submit("http://h.test/running", deliver);
  agent.submit("http://h.test/waiting", deliver);
  await agent.stop();
  agent.submit("http://h.test/after", deliver);
  assert.deepEqual(results.map((r) => [r.url, r.error?.code]), [
    ["http://h.test/waiting", "stopped"],
    ["http://h.test/running", "stopped"],
    ["http://h.test/after", "stopped"],
  ]);
  assert.equal(http.calls.length, 1);
});

Deno.test("Agent answers an invalid request at once without using a slot", () => {
  const http = heldClient();
  const agent = new Agent({ id: "web", config: config(), clock: new ManualClock(), log, http });
  const { results, deliver } = collect();
  agent.submit({ url: "ftp://h.test/" }, deliver);
  agent.submit(7, deliver);
  assert.deepEqual(results.map((r) => r.error?.code), ["unsupported_scheme", "invalid_request"]);
  assert.equal(agent.active, 0);
  assert.equal(http.calls.length, 0);
});
