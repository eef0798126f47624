/**
 * startGateway over real ports with a real `fetch`: a fake caller first (the
 * port sharing and public binding), then a real process runtime through
 * `running.caller` (a `#gateway` section of a real config).
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import {
  gatewayApp,
  processSources,
  serveAdmin,
  type StageCaller,
  startGateway,
} from "../../core/admin/mod.ts";
import type { GatewayConfig } from "../../core/config/mod.ts";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const log = getLogger(["stage", "admin", "test"]);

function config(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    listen: "127.0.0.1:0",
    hostname: "127.0.0.1",
    port: 0,
    targets: ["calc:*"],
    timeoutMs: 2000,
    maxTimeoutMs: 5000,
    maxBodyBytes: 1024,
    maxInflight: 16,
    cors: [],
    ...overrides,
  };
}

/** POSTs `body` to the gateway on a connection of its own (closed after). */
async function call(
  address: string,
  target: string,
  body?: unknown,
  headers: Record<string, string> = {},
  query = "",
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  using client = Deno.createHttpClient({});
  const response = await fetch(`http://${address}/api/${encodeURIComponent(target)}${query}`, {
    client,
    method: "POST",
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

function answering(name: string): StageCaller {
  return { request: () => Promise.resolve(name), signal: () => {} };
}

Deno.test("startGateway serves POST /api over a real port and shares it with SO_REUSEPORT", async () => {
  await using first = await startGateway(config(), answering("first"), { log });
  assert.match(first.address, /^127\.0\.0\.1:\d+$/);
  // A second process group binds the same port: the kernel spreads connections.
  await using second = await startGateway(
    config({ port: first.port }),
    answering("second"),
    { log },
  );
  assert.equal(second.port, first.port);
  const seen = new Set<unknown>();
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const { status, body } = await call(first.address, "calc:add", [1]);
    assert.equal(status, 200);
    seen.add(body.reply);
  }
  assert.deepEqual([...seen].sort(), ["first", "second"]);
  await first.shutdown();
  // The port stays served by the other one.
  for (let i = 0; i < 3; i++) {
    assert.deepEqual((await call(second.address, "calc:add", [1])).body, { reply: "second" });
  }
  const refused = await call(second.address, "ticket:@db", []);
  assert.equal(refused.status, 403);
});

Deno.test("startGateway answers 413 to a streamed body over max_body on a real connection", async () => {
  const calls: unknown[][] = [];
  const caller: StageCaller = {
    request: (_target, values) => {
      calls.push(values);
      return Promise.resolve(values.length);
    },
    signal: () => {},
  };
  await using gateway = await startGateway(config({ maxBodyBytes: 1024 }), caller, { log });
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      // 64 chunks of 100 bytes, with no Content-Length: only counting the bytes catches it.
      if (sent++ === 64) return controller.close();
      controller.enqueue(new TextEncoder().encode(sent === 1 ? "[" : "1".repeat(99) + ","));
    },
  });
  using client = Deno.createHttpClient({});
  const response = await fetch(`http://${gateway.address}/api/calc:x`, {
    client,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  assert.equal(response.status, 413);
  assert.equal((await response.json()).error.name, "PayloadTooLarge");
  assert.deepEqual(calls, []);
  // Under the limit on the same server: answered.
  assert.deepEqual((await call(gateway.address, "calc:x", [1, 2])).body, { reply: 2 });
});

Deno.test("startGateway binds a public address without a token, and checks the token when set", async () => {
  await using open = await startGateway(
    config({ listen: "0.0.0.0:0", hostname: "0.0.0.0" }),
    answering("open"),
    { log },
  );
  assert.equal(open.hostname, "0.0.0.0");
  assert.deepEqual((await call(`127.0.0.1:${open.port}`, "calc:x")).body, { reply: "open" });

  await using guarded = await startGateway(
    config({ token: "gw" }),
    answering("guarded"),
    { log },
  );
  const denied = await call(guarded.address, "calc:x");
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("www-authenticate"), 'Bearer realm="stage-gateway"');
  assert.deepEqual(
    (await call(guarded.address, "calc:x", [], { authorization: "Bearer gw" })).body,
    {
      reply: "guarded",
    },
  );
});

Deno.test("startGateway rejects a config it cannot serve", async () => {
  await assert.rejects(startGateway(config({ targets: [] }), answering("x"), { log }), TypeError);
  await assert.rejects(startGateway(config({ port: 70000 }), answering("x"), { log }), TypeError);
  // The admin API keeps refusing to be public without a token unless asked.
  assert.throws(() =>
    serveAdmin(gatewayApp(answering("x"), { targets: ["calc:*"] }), {
      hostname: "0.0.0.0",
      port: 0,
    }, log), { name: "AdminExposedError" });
});

const CALC = REFERENCE + `
let last: unknown = undefined;
stage.waitfor("add", (a: number, b: number) => a + b);
stage.waitfor("boom", () => { throw new RangeError("no such thing"); });
stage.waitfor("never", () => new Promise(() => {}));
stage.waitfor("remember", (value: unknown) => { last = value; });
stage.waitfor("recall", () => last ?? null);
stage.waitfor("secret", () => "should not be reachable");
`;

Deno.test("startGateway calls a real stage through running.caller", async () => {
  await using fixture = await startFixture({
    scripts: { "calc.ts": CALC },
    config: {
      "#startup": [["script+calc"]],
      "#gateway": {
        listen: "127.0.0.1:0",
        targets: [
          "calc:add",
          "calc:boom",
          "calc:never",
          "calc:remember",
          "calc:recall",
          "nobody:*",
        ],
        timeout: 2000,
      },
      script: { "script+calc": "calc" },
    },
    workers: 1,
  });
  const gatewayConfig = fixture.config.gateway;
  assert.ok(gatewayConfig !== undefined);
  let draining = false;
  const sources = processSources(fixture.running, { draining: () => draining });
  await using gateway = await startGateway(gatewayConfig, fixture.running.caller, {
    log,
    health: () => sources.health(),
  });
  const address = gateway.address;

  const sum = await call(address, "calc:add", [2, 3]);
  assert.equal(sum.status, 200);
  assert.deepEqual(sum.body, { reply: 5 });
  const boom = await call(address, "calc:boom", []);
  assert.equal(boom.status, 502);
  assert.deepEqual(boom.body, { error: { name: "RangeError", message: "no such thing" } });
  const nobody = await call(address, "nobody:add", []);
  assert.equal(nobody.status, 404);
  assert.equal((nobody.body.error as { name: string }).name, "StageNotFoundError");
  const slow = await call(address, "calc:never", [], {}, "?timeout=150");
  assert.equal(slow.status, 504);
  assert.equal((slow.body.error as { name: string }).name, "RequestTimeoutError");
  assert.equal((await call(address, "calc:secret", [])).status, 403);

  const accepted = await call(address, "calc:remember", ["kept"], { prefer: "respond-async" });
  assert.equal(accepted.status, 202);
  assert.deepEqual(accepted.body, { accepted: true });
  await poll(
    "the async signal to arrive",
    async () => (await call(address, "calc:recall")).body.reply,
    (reply) => reply === "kept",
    3000,
  );

  draining = true;
  const unavailable = await call(address, "calc:add", [1, 1]);
  assert.equal(unavailable.status, 503);
  assert.equal(unavailable.headers.get("retry-after"), "1");
  draining = false;
  assert.deepEqual((await call(address, "calc:add", [1, 1])).body, { reply: 2 });
});
