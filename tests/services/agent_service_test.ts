/**
 * The agent stage against a local HTTP server: the real `fetch` client for
 * every behaviour, then end to end from a script through `"agent:cb"`,
 * `stage.request("agent:get")`, `"agent:x=cb"` and `"agent+cb"`.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type { AgentConfig } from "../../core/config/mod.ts";
import type { AgentRequest, AgentResult } from "../../core/services/agent_request.ts";
import { Agent } from "../../core/services/agent_service.ts";
import { fetchHttp } from "../../core/services/http_client.ts";
import { systemClock } from "../../core/time/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

/** A local server with the routes the tests use; it counts requests held at `/hold`. */
class TestServer implements AsyncDisposable {
  readonly base: string;
  readonly held: (() => void)[] = [];
  peak = 0;
  #active = 0;
  #parked: (() => void)[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#route(request),
    );
    this.base = `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async #route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname) {
      case "/text":
        return new Response("hello, agent", {
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      case "/echo":
        return Response.json({
          method: request.method,
          type: request.headers.get("content-type"),
          agent: request.headers.get("user-agent"),
          custom: request.headers.get("x-custom"),
          body: await request.text(),
        });
      case "/redirect": {
        const headers = new Headers({ location: "/cookies?from=redirect" });
        headers.append("set-cookie", "hop=1; Path=/");
        return new Response(null, { status: 302, headers });
      }
      case "/cookies": {
        const headers = new Headers({ "content-type": "text/plain" });
        headers.append("set-cookie", "session=abc; HttpOnly");
        headers.append("set-cookie", "theme=dark");
        return new Response(url.search, { headers });
      }
      case "/binary":
        return new Response(Uint8Array.from({ length: 256 }, (_, i) => i), {
          headers: { "content-type": "application/octet-stream" },
        });
      case "/slow":
        // Never answers while the test runs: the client gives up first.
        await new Promise<void>((resolve) => this.#parked.push(resolve));
        return new Response("too late");
      case "/endless":
        return new Response(
          new ReadableStream<Uint8Array>({
            pull: (controller) => controller.enqueue(new Uint8Array(16 * 1024)),
          }),
          { headers: { "content-type": "application/octet-stream" } },
        );
      case "/declared":
        return new Response("x".repeat(200_000), { headers: { "content-type": "text/plain" } });
      case "/hold":
        this.peak = Math.max(this.peak, ++this.#active);
        await new Promise<void>((resolve) => this.held.push(resolve));
        this.#active--;
        return new Response(url.searchParams.get("n"));
    }
    return new Response("no such route", { status: 404 });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const release of [...this.held.splice(0), ...this.#parked.splice(0)]) release();
    await this.#server.shutdown();
  }
}

/** A port nobody listens on: bound, then closed. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Waits (bounded) until `condition` holds. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const settings = (overrides: Partial<AgentConfig> = {}): AgentConfig => ({
  userAgent: "stage-test/1",
  timeout: 5000,
  concurrency: 4,
  queue: 16,
  maxBody: 100_000,
  ...overrides,
});

/** A real agent (fetch, system clock) and a way to await one result. */
async function withAgent(
  overrides: Partial<AgentConfig>,
  run: (
    agent: Agent,
    send: (request: AgentRequest | string) => Promise<AgentResult>,
    server: TestServer,
  ) => Promise<void>,
): Promise<void> {
  await using server = new TestServer();
  const agent = new Agent({
    id: "web",
    config: settings(overrides),
    clock: systemClock,
    log: getLogger(["stage", "test"]),
    http: fetchHttp,
  });
  try {
    await run(
      agent,
      (request) => new Promise((resolve) => agent.submit(request, resolve)),
      server,
    );
  } finally {
    await agent.stop();
  }
}

Deno.test("agent GETs text with its user-agent and reports status, URL, type, length and time", async () => {
  await withAgent({}, async (_agent, send, server) => {
    const result = await send({ url: `${server.base}/text`, extra: { id: 1 } });
    assert.equal(result.error, undefined);
    assert.equal(result.status, 200);
    assert.equal(result.url, `${server.base}/text`);
    assert.equal(result.effective_url, `${server.base}/text`);
    assert.equal(result.redirect_url, "");
    assert.deepEqual(result.extra, { id: 1 });
    assert.equal(result.data.type, "text/plain");
    assert.equal(result.data.charset, "utf-8");
    assert.equal(result.data.content, "hello, agent");
    assert.equal(result.data.length, 12);
    assert.ok(result.data.time >= 0 && result.data.time < 5000, `time ${result.data.time}`);
    assert.equal(result.header["content-type"], "text/plain; charset=utf-8");
  });
});

Deno.test("agent POSTs JSON data with the caller's headers and a custom method", async () => {
  await withAgent({}, async (_agent, send, server) => {
    const posted = await send({
      url: `${server.base}/echo`,
      header: { "x-custom": "yes" },
      data: { name: "stage", n: [1, 2] },
    });
    assert.equal(posted.data.type, "application/json");
    assert.deepEqual(JSON.parse(posted.data.content as string), {
      method: "POST",
      type: "application/json",
      agent: "stage-test/1",
      custom: "yes",
      body: '{"name":"stage","n":[1,2]}',
    });
    const put = await send({
      url: `${server.base}/echo`,
      method: "PUT",
      header: { "user-agent": "mine", "content-type": "text/csv" },
      data: "a,b",
    });
    assert.deepEqual(JSON.parse(put.data.content as string), {
      method: "PUT",
      type: "text/csv",
      agent: "mine",
      custom: null,
      body: "a,b",
    });
  });
});

Deno.test("agent follows redirects by default and reports the Location with redirect: manual", async () => {
  await withAgent({}, async (_agent, send, server) => {
    const followed = await send(`${server.base}/redirect`);
    assert.equal(followed.status, 200);
    assert.equal(followed.effective_url, `${server.base}/cookies?from=redirect`);
    assert.equal(followed.redirect_url, "");
    assert.equal(followed.data.content, "?from=redirect");
    assert.deepEqual(followed.cookie, ["session=abc; HttpOnly", "theme=dark"]);

    const manual = await send({ url: `${server.base}/redirect`, redirect: "manual" });
    assert.equal(manual.status, 302);
    assert.equal(manual.effective_url, `${server.base}/redirect`);
    assert.equal(manual.redirect_url, `${server.base}/cookies?from=redirect`);
    assert.deepEqual(manual.cookie, ["hop=1; Path=/"]);
  });
});

Deno.test("agent returns a binary body as bytes", async () => {
  await withAgent({}, async (_agent, send, server) => {
    const result = await send(`${server.base}/binary`);
    assert.equal(result.data.type, "application/octet-stream");
    assert.equal(result.data.charset, "");
    assert.ok(result.data.content instanceof Uint8Array);
    assert.equal(result.data.length, 256);
    assert.deepEqual(result.data.content, Uint8Array.from({ length: 256 }, (_, i) => i));
  });
});

Deno.test("agent fails with timeout, refused, dns, too_large and unsupported_scheme results", async () => {
  await withAgent({ maxBody: 100_000 }, async (_agent, send, server) => {
    const slow = await send({ url: `${server.base}/slow`, timeout: 100, extra: "slow" });
    assert.equal(slow.status, 0);
    assert.equal(slow.error?.code, "timeout");
    assert.match(slow.error!.message, /no complete response within 100 ms/);
    assert.equal(slow.extra, "slow");
    assert.ok(slow.data.time >= 90, `gave up after ${slow.data.time} ms`);

    const refused = await send(`http://127.0.0.1:${closedPort()}/`);
    assert.equal(refused.error?.code, "refused");
    assert.match(refused.error!.message, /Connection refused/);

    // .invalid never resolves (RFC 6761); offline, the lookup fails at once.
    const dns = await send({ url: "http://nonexistent.invalid/", timeout: 4000 });
    assert.equal(dns.error?.code, "dns", dns.error?.message);

    const endless = await send(`${server.base}/endless`);
    assert.equal(endless.error?.code, "too_large");
    assert.match(endless.error!.message, /larger than max_body \(100000 bytes\)/);
    const declared = await send(`${server.base}/declared`);
    assert.equal(declared.error?.code, "too_large");

    const ftp = await send("ftp://127.0.0.1/file");
    assert.equal(ftp.error?.code, "unsupported_scheme");
  });
});

Deno.test("agent keeps at most `concurrency` requests at the server, the rest queued", async () => {
  await withAgent({ concurrency: 3 }, async (agent, send, server) => {
    const results = Array.from({ length: 8 }, (_, n) => send(`${server.base}/hold?n=${n}`));
    let released = 0;
    while (released < 8) {
      const expected = Math.min(3, 8 - released);
      await until(() => server.held.length === expected, `${expected} requests are held`);
      assert.equal(agent.active, expected);
      assert.equal(agent.waiting, 8 - released - expected);
      released += expected;
      for (const release of server.held.splice(0)) release();
    }
    const contents = (await Promise.all(results)).map((result) => result.data.content);
    assert.deepEqual(contents, ["0", "1", "2", "3", "4", "5", "6", "7"]);
    assert.equal(server.peak, 3, "the server saw 3 at once, never more");
  });
});

Deno.test("agent answers busy once its queue is full", async () => {
  await withAgent({ concurrency: 1, queue: 1 }, async (_agent, send, server) => {
    const first = send(`${server.base}/hold?n=1`);
    const second = send(`${server.base}/hold?n=2`);
    const busy = await send(`${server.base}/hold?n=3`);
    assert.equal(busy.error?.code, "busy");
    await until(() => server.held.length === 1, "the first is held");
    server.held.shift()!();
    await until(() => server.held.length === 1, "the second is held");
    server.held.shift()!();
    assert.deepEqual([(await first).data.content, (await second).data.content], ["1", "2"]);
  });
});

const START = REFERENCE + `
const summary = (result: any) => ({
  status: result.status,
  url: result.url,
  effective_url: result.effective_url,
  extra: result.extra,
  type: result.data.type,
  length: result.data.length,
  text: typeof result.data.content === "string" ? result.data.content : null,
  bytes: result.data.content instanceof Uint8Array ? Array.from(result.data.content.slice(0, 4)) : null,
  error: result.error?.code ?? null,
  worker: stage.worker,
});
stage.waitfor("cb", (result: any) => {
  broker.f(result.extra.socket).commit({ via: "cb", ...summary(result) });
});
stage.waitfor("other", (result: any) => {
  broker.f(result.extra.socket).commit({ via: "other", ...summary(result) });
});
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const extra = { socket: socket.id, worker: stage.worker };
  switch (data.op) {
    case "signal": return stage.signal("agent:cb", { url: data.url, extra });
    case "sender": return stage.signal("agent+cb", { url: data.url, extra });
    case "reply-to": return stage.signal("agent:x=other", { url: data.url, extra });
    case "request": {
      const result = await stage.request("agent:get", { url: data.url, data: data.body, extra });
      return socket.commit({ via: "request", ...summary(result) });
    }
  }
});
`;

Deno.test("a script reaches the agent stage with agent:cb, agent+cb, agent:x=cb and stage.request", async () => {
  await using server = new TestServer();
  await using fixture = await startFixture({
    workers: 2,
    config: {
      "#startup": [["script+start", "agent+agent"]],
      "agent+agent": { "user-agent": "fixture/1", timeout: 5000, concurrency: 2 },
    },
    scripts: { "start.ts": START },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  type Summary = Record<string, unknown> & { extra: { worker: number } };

  await client.send({ op: "signal", url: `${server.base}/text` });
  const text = await client.next<Summary>();
  assert.equal(text.via, "cb");
  assert.equal(text.status, 200);
  assert.equal(text.text, "hello, agent");
  assert.equal(text.effective_url, `${server.base}/text`);
  assert.equal(text.worker, text.extra.worker, "the result reached the worker that asked");

  await client.send({ op: "sender", url: `${server.base}/binary` });
  const binary = await client.next<Summary>();
  assert.equal(binary.via, "cb", '"agent+cb" answers the sender\'s "cb"');
  assert.deepEqual([binary.type, binary.length, binary.bytes], [
    "application/octet-stream",
    256,
    [0, 1, 2, 3],
  ]);

  await client.send({ op: "reply-to", url: `http://127.0.0.1:${closedPort()}/` });
  const refused = await client.next<Summary>();
  assert.equal(refused.via, "other", "the reply address wins over the message id");
  assert.deepEqual([refused.status, refused.error], [0, "refused"]);

  await client.send({ op: "request", url: `${server.base}/echo`, body: { a: 1 } });
  const echoed = await client.next<Summary>();
  assert.equal(echoed.via, "request");
  assert.deepEqual(JSON.parse(echoed.text as string), {
    method: "POST",
    type: "application/json",
    agent: "fixture/1",
    custom: null,
    body: '{"a":1}',
  });
});
