/**
 * gatewayApp over a fake StageCaller, in-process with `app.request()`: body
 * mapping, async mode, the allowlist, limits, errors, CORS and the token.
 */
import assert from "node:assert/strict";
import { gatewayApp, type GatewayAppOptions, type StageCaller } from "../../core/admin/mod.ts";
import {
  RequestTimeoutError,
  StageNotFoundError,
  WaitforNotFoundError,
} from "../../core/api/messaging.ts";
import { poll } from "../_helpers/poll.ts";

type Call = { kind: "request"; target: string; values: unknown[]; timeoutMs: number } | {
  kind: "signal";
  target: string;
  values: unknown[];
};

/** A caller that records every call and answers with `reply` (a function of the call). */
function fakeCaller(
  reply: (target: string, values: unknown[]) => unknown = (_t, values) => values[0],
  onSignal: (target: string, values: unknown[]) => void = () => {},
) {
  const calls: Call[] = [];
  const caller: StageCaller = {
    request(target, values, timeoutMs) {
      calls.push({ kind: "request", target, values, timeoutMs });
      try {
        const result = reply(target, values);
        return result instanceof Promise ? result : Promise.resolve(result);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    signal(target, values) {
      calls.push({ kind: "signal", target, values });
      onSignal(target, values);
    },
  };
  return { caller, calls };
}

const TARGETS = ["calc:*", "game:move", "chat:room.*", "rank:get"];

function app(caller: StageCaller, options: Partial<GatewayAppOptions> = {}) {
  return gatewayApp(caller, { targets: TARGETS, ...options });
}

function post(body?: string, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body }),
  };
}

/** Asserts the response is a JSON error with this status and name; returns its message. */
async function assertError(response: Response, status: number, name: string): Promise<string> {
  assert.equal(response.status, status);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["message", "name"]);
  assert.equal(body.error.name, name);
  return body.error.message;
}

Deno.test("gatewayApp maps a JSON array body to the values list and returns the first reply", async () => {
  const { caller, calls } = fakeCaller((_t, values) =>
    (values as number[]).reduce((a, b) => a + b)
  );
  const response = await app(caller).request("/api/calc:add", post("[2, 3]"));
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { reply: 5 });
  assert.deepEqual(calls, [{
    kind: "request",
    target: "calc:add",
    values: [2, 3],
    timeoutMs: 5000,
  }]);
});

Deno.test("gatewayApp sends any other JSON value as one value and an empty body as no values", async () => {
  const { caller, calls } = fakeCaller((_t, values) => values.length);
  const gateway = app(caller);
  for (const body of ['{"a": 1}', "null", "7", '"text"', "[[1, 2]]", "[]"]) {
    const response = await gateway.request("/api/calc:echo", post(body));
    assert.equal(response.status, 200, body);
    await response.body?.cancel();
  }
  const empty = await gateway.request("/api/calc:echo", post(""));
  assert.deepEqual(await empty.json(), { reply: 0 });
  const none = await gateway.request("/api/calc:echo", post()); // no body, no content type
  assert.deepEqual(await none.json(), { reply: 0 });
  assert.deepEqual(calls.map((call) => call.values), [
    [{ a: 1 }],
    [null],
    [7],
    ["text"],
    [[1, 2]],
    [],
    [],
    [],
  ]);
});

Deno.test("gatewayApp URL-decodes the target and matches the allowlist without the ?query", async () => {
  const { caller, calls } = fakeCaller(() => "ok");
  const gateway = app(caller);
  const paths = ["/api/chat%3Aroom.say", "/api/rank:get%3Fboard%2Ftier", "/api/calc:a%20b"];
  const statuses = [];
  for (const path of paths) {
    const response = await gateway.request(path, post("[]"));
    statuses.push(response.status);
    await response.body?.cancel();
  }
  assert.deepEqual(statuses, [200, 200, 400]);
  // "calc:a b" has whitespace in its message id: refused before any call.
  assert.deepEqual(calls.map((call) => call.target), ["chat:room.say", "rank:get?board/tier"]);
  await assertError(await gateway.request("/api/calc%3", post("[]")), 400, "TypeError");
});

Deno.test("gatewayApp answers undefined replies as null and serialises bigint, Map, Set, typed arrays and Errors", async () => {
  const replies: unknown[] = [
    undefined,
    {
      big: 2n ** 70n,
      map: new Map([["k", 1]]),
      set: new Set([1, 2]),
      bytes: new Uint8Array([1, 2]),
    },
    Object.assign(new RangeError("inside"), { stack: "secret stack" }),
  ];
  const { caller } = fakeCaller(() => replies.shift());
  const gateway = app(caller);
  assert.deepEqual(await (await gateway.request("/api/calc:x", post())).json(), { reply: null });
  assert.deepEqual(await (await gateway.request("/api/calc:x", post())).json(), {
    reply: { big: "1180591620717411303424", map: { k: 1 }, set: [1, 2], bytes: [1, 2] },
  });
  const text = await (await gateway.request("/api/calc:x", post())).text();
  assert.deepEqual(JSON.parse(text), { reply: { name: "RangeError", message: "inside" } });
  assert.ok(!text.includes("secret"));
});

Deno.test("gatewayApp uses the default timeout, honours ?timeout= and caps it at the maximum", async () => {
  const { caller, calls } = fakeCaller(() => 1);
  const gateway = app(caller, { timeoutMs: 700, maxTimeoutMs: 9000 });
  for (const query of ["", "?timeout=250", "?timeout=9000", "?timeout=120000"]) {
    const response = await gateway.request(`/api/calc:x${query}`, post());
    assert.equal(response.status, 200, query);
    await response.body?.cancel();
  }
  assert.deepEqual(calls.map((call) => call.kind === "request" && call.timeoutMs), [
    700,
    250,
    9000,
    9000,
  ]);
  for (const bad of ["0", "-5", "abc", "1.5", "", "1e3"]) {
    const message = await assertError(
      await gateway.request(`/api/calc:x?timeout=${bad}`, post()),
      400,
      "RangeError",
    );
    assert.ok(message.includes(JSON.stringify(bad)), message);
  }
  assert.equal(calls.length, 4);
});

Deno.test("gatewayApp refuses locks, replies, own messages and reply/fail addresses with 400", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = gatewayApp(caller, { targets: ["calc:*", "door:*"] });
  const refused = [
    ">door.cb",
    ">>door.cb",
    "<door.*",
    "null",
    "msg",
    ":msg",
    "*msg",
    "calc:",
    "calc:add=cb",
    "calc:add!fail",
    "9calc:add",
  ];
  for (const target of refused) {
    const message = await assertError(
      await gateway.request(`/api/${encodeURIComponent(target)}`, post("[1]")),
      400,
      "TypeError",
    );
    assert.ok(message.includes(JSON.stringify(target)), message);
  }
  // The async path checks the same way.
  await assertError(
    await gateway.request("/api/%3Edoor.cb?async", post("[1]")),
    400,
    "TypeError",
  );
  assert.deepEqual(calls, []);
});

Deno.test("gatewayApp answers 403 for targets outside the allowlist", async () => {
  const { caller, calls } = fakeCaller(() => "ok");
  const gateway = app(caller);
  for (
    const target of [
      "ticket:@db",
      "game:moves",
      "game:mov",
      "*calc:add",
      "=calc:add",
      "chat:room",
      "chat:lobby.x",
      "calc+add",
      "rank:getall",
    ]
  ) {
    const message = await assertError(
      await gateway.request(`/api/${encodeURIComponent(target)}`, post("[]")),
      403,
      "Forbidden",
    );
    assert.ok(message.includes(JSON.stringify(target)), message);
  }
  assert.deepEqual(calls, []);
  for (const target of ["game:move", "chat:room.say", "calc:add?x", "calc:.", "rank:get?top"]) {
    const response = await gateway.request(`/api/${encodeURIComponent(target)}`, post("[]"));
    assert.equal(response.status, 200, target);
    await response.body?.cancel();
  }
  assert.equal(calls.length, 5);
});

/** An error as it arrives from another thread: a plain Error with the class's name. */
function rebuilt(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

Deno.test("gatewayApp maps caller errors by name: 404 not found, 504 timeout, 502 the handler's own, never a stack", async () => {
  const cases: [Error, number][] = [
    [new StageNotFoundError('No stage "calc"'), 404],
    [rebuilt("StageNotFoundError", "rebuilt"), 404],
    [new WaitforNotFoundError("calc:nope"), 404],
    [new RequestTimeoutError("No reply from calc:slow within 50 ms"), 504],
    [rebuilt("RequestTimeoutError", "rebuilt"), 504],
    [new RangeError("no such thing"), 502],
    [new TypeError("handler bug"), 502],
    [rebuilt("WorkerTerminatedError", "worker replaced"), 502],
  ];
  for (const [error, status] of cases) {
    error.stack = `${error.name}: secret\n    at handler (/srv/app/scripts/calc.ts:1:1)`;
    const { caller } = fakeCaller(() => Promise.reject(error));
    const response = await app(caller).request("/api/calc:x", post("[]"));
    const text = await response.clone().text();
    assert.ok(!text.includes("/srv/app") && !text.includes("secret"), text);
    const message = await assertError(response, status, error.name);
    assert.equal(message, error.message);
  }
  // Something thrown that is not an Error still answers.
  const { caller } = fakeCaller(() => Promise.reject("a string"));
  assert.equal(
    await assertError(await app(caller).request("/api/calc:x", post()), 502, "Error"),
    "a string",
  );
});

Deno.test("gatewayApp answers 415 unless the body is JSON, and accepts JSON media types", async () => {
  const { caller, calls } = fakeCaller(() => "ok");
  const gateway = app(caller);
  for (
    const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "application/jsonx",
      "application/json; charset=latin1",
    ]
  ) {
    const message = await assertError(
      await gateway.request("/api/calc:x", {
        method: "POST",
        headers: { "content-type": type },
        body: "[1]",
      }),
      415,
      "UnsupportedMediaType",
    );
    assert.ok(message.length > 0);
  }
  // A body with no Content-Type at all.
  await assertError(
    await gateway.request("/api/calc:x", { method: "POST", body: new TextEncoder().encode("[1]") }),
    415,
    "UnsupportedMediaType",
  );
  assert.deepEqual(calls, []);
  for (
    const type of [
      "application/json",
      "Application/JSON; charset=UTF-8",
      "application/vnd.api+json",
    ]
  ) {
    const response = await gateway.request("/api/calc:x", {
      method: "POST",
      headers: { "content-type": type },
      body: "[1]",
    });
    assert.equal(response.status, 200, type);
    await response.body?.cancel();
  }
});

Deno.test("gatewayApp answers 400 for malformed JSON and invalid UTF-8", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = app(caller);
  for (const body of ["[1,", "{a: 1}", "undefined", " "]) {
    const message = await assertError(
      await gateway.request("/api/calc:x", post(body)),
      400,
      "SyntaxError",
    );
    assert.match(message, /not JSON/);
  }
  const message = await assertError(
    await gateway.request("/api/calc:x", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x22, 0xff, 0x22]),
    }),
    400,
    "SyntaxError",
  );
  assert.match(message, /UTF-8/);
  assert.deepEqual(calls, []);
});

Deno.test("gatewayApp answers 413 for a declared Content-Length over max_body without reading it", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = app(caller, { maxBodyBytes: 16 });
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(8));
    },
  });
  const request = new Request("http://gateway/api/calc:x", {
    method: "POST",
    headers: { "content-type": "application/json", "content-length": "17" },
    body,
    duplex: "half",
  } as RequestInit);
  const message = await assertError(await gateway.request(request), 413, "PayloadTooLarge");
  assert.match(message, /16 bytes/);
  assert.ok(pulled <= 1, `pulled ${pulled} chunks`);
  // Exactly the limit is fine.
  const ok = await gateway.request("/api/calc:x", post(`"${"x".repeat(14)}"`));
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  await assertError(
    await gateway.request("/api/calc:x", post("[]", { "content-length": "two" })),
    400,
    "BadRequest",
  );
  assert.equal(calls.length, 1);
});

Deno.test("gatewayApp counts streamed bytes: a long body without Content-Length gets 413", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = app(caller, { maxBodyBytes: 1000 });
  let pulled = 0;
  let cancelled = false;
  // 200 chunks of 101 bytes (finite, so a gateway that did not count would answer, not hang).
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      if (pulled > 200) return controller.close();
      controller.enqueue(new TextEncoder().encode(pulled === 1 ? "[" : "1".repeat(100) + ","));
    },
    cancel() {
      cancelled = true;
    },
  });
  const request = new Request("http://gateway/api/calc:x", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    duplex: "half",
  } as RequestInit);
  assert.equal(request.headers.get("content-length"), null);
  await assertError(await gateway.request(request), 413, "PayloadTooLarge");
  assert.ok(cancelled, "the body stream was cancelled");
  assert.ok(pulled <= 12, `pulled ${pulled} chunks of 101 bytes`);
  assert.deepEqual(calls, []);
});

Deno.test("gatewayApp signals on Prefer: respond-async or ?async and answers 202", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = app(caller);
  const preferred = await gateway.request(
    "/api/game:move",
    post('{"x": 1}', { prefer: "wait=5, respond-async" }),
  );
  assert.equal(preferred.status, 202);
  assert.equal(preferred.headers.get("preference-applied"), "respond-async");
  assert.deepEqual(await preferred.json(), { accepted: true });
  const queried = await gateway.request("/api/game:move?async", post("[1, 2]"));
  assert.equal(queried.status, 202);
  assert.equal(queried.headers.get("preference-applied"), null);
  assert.deepEqual(await queried.json(), { accepted: true });
  const off = await gateway.request("/api/game:move?async=false", post("[3]"));
  assert.deepEqual(await off.json(), { reply: 3 });
  assert.deepEqual(calls, [
    { kind: "signal", target: "game:move", values: [{ x: 1 }] },
    { kind: "signal", target: "game:move", values: [1, 2] },
    { kind: "request", target: "game:move", values: [3], timeoutMs: 5000 },
  ]);
});

Deno.test("gatewayApp maps signal failures: 404 when nothing serves the stage, 400 for a TypeError", async () => {
  let error: Error = new StageNotFoundError('No stage "game"');
  const { caller } = fakeCaller(undefined, () => {
    throw error;
  });
  const gateway = app(caller);
  await assertError(
    await gateway.request("/api/game:move?async", post()),
    404,
    "StageNotFoundError",
  );
  error = new TypeError("bad target");
  await assertError(await gateway.request("/api/game:move?async", post()), 400, "TypeError");
});

Deno.test("gatewayApp answers 503 with Retry-After while health says the process is not ready", async () => {
  const { caller, calls } = fakeCaller(() => "ok");
  let state: { ready: boolean; state: "ready" | "draining" | "overloaded" } = {
    ready: false,
    state: "draining",
  };
  const gateway = app(caller, { health: () => Promise.resolve(state), retryAfterSeconds: 3 });
  for (const current of ["draining", "overloaded"] as const) {
    state = { ready: false, state: current };
    const response = await gateway.request("/api/calc:x", post("[]"));
    assert.equal(response.headers.get("retry-after"), "3");
    assert.match(await assertError(response, 503, "Unavailable"), new RegExp(current));
    await assertError(await gateway.request("/api/calc:x?async", post("[]")), 503, "Unavailable");
  }
  assert.deepEqual(calls, []);
  state = { ready: true, state: "ready" };
  assert.deepEqual(await (await gateway.request("/api/calc:x", post())).json(), { reply: "ok" });
});

/** A caller whose requests wait until released. */
function heldCaller() {
  const waiting: (() => void)[] = [];
  const { caller, calls } = fakeCaller(() =>
    new Promise((resolve) => waiting.push(() => resolve("done")))
  );
  return { caller, calls, release: () => waiting.splice(0).forEach((go) => go()) };
}

Deno.test("gatewayApp answers 503 at once beyond max_inflight and frees slots as requests finish", async () => {
  const { caller, calls, release } = heldCaller();
  const gateway = app(caller, { maxInflight: 2 });
  const first = gateway.request("/api/calc:x", post());
  const second = gateway.request("/api/calc:x", post());
  await poll(
    "two requests in flight",
    () => Promise.resolve(calls.length),
    (n) => n === 2,
    2000,
    5,
  );
  const busy = await gateway.request("/api/calc:x", post());
  assert.equal(busy.headers.get("retry-after"), "1");
  await assertError(busy, 503, "GatewayBusy");
  assert.equal(calls.length, 2);
  release();
  assert.deepEqual(await (await first).json(), { reply: "done" });
  assert.deepEqual(await (await second).json(), { reply: "done" });
  // Failed requests free their slots too.
  for (let i = 0; i < 5; i++) {
    await assertError(await gateway.request("/api/nope:x", post()), 403, "Forbidden");
    await assertError(await gateway.request("/api/calc:x", post("[")), 400, "SyntaxError");
  }
  const later = gateway.request("/api/calc:x", post());
  await poll("the third call", () => Promise.resolve(calls.length), (n) => n === 3, 2000, 5);
  release();
  assert.deepEqual(await (await later).json(), { reply: "done" });
});

Deno.test("gatewayApp stops waiting for a caller that never settles after the timeout and the grace", async () => {
  // Settles only after 3 s (a gateway without the backstop would wait for it: no hang).
  const timers: ReturnType<typeof setTimeout>[] = [];
  const { caller } = fakeCaller(() =>
    new Promise((resolve) => timers.push(setTimeout(() => resolve("late"), 3000)))
  );
  const gateway = app(caller, { maxInflight: 1, timeoutGraceMs: 20 });
  const started = Date.now();
  const message = await assertError(
    await gateway.request("/api/calc:x?timeout=30", post()),
    504,
    "RequestTimeoutError",
  );
  assert.ok(Date.now() - started < 2000);
  assert.match(message, /30 ms/);
  // Its slot was freed: the next request is taken (and times out the same way).
  await assertError(
    await gateway.request("/api/calc:x?timeout=10", post()),
    504,
    "RequestTimeoutError",
  );
  timers.forEach(clearTimeout);
});

Deno.test("gatewayApp requires the bearer token when one is set", async () => {
  const { caller, calls } = fakeCaller(() => "ok");
  const gateway = app(caller, { token: "gw-token" });
  const missing = await gateway.request("/api/calc:x", post());
  assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="stage-gateway"');
  assert.match(await assertError(missing, 401, "Unauthorized"), /Missing/);
  for (
    const header of [
      "Bearer gw-tokem",
      "Bearer gw-token2",
      `Basic ${btoa("u:gw-token")}`,
      "gw-token",
    ]
  ) {
    await assertError(
      await gateway.request("/api/calc:x", post(undefined, { authorization: header })),
      401,
      "Unauthorized",
    );
  }
  // An unauthenticated caller learns nothing of the allowlist.
  await assertError(await gateway.request("/api/secret:x", post()), 401, "Unauthorized");
  assert.deepEqual(calls, []);
  const ok = await gateway.request(
    "/api/calc:x",
    post(undefined, { authorization: "bearer gw-token" }),
  );
  assert.deepEqual(await ok.json(), { reply: "ok" });
});

Deno.test("gatewayApp sends CORS headers for listed origins only and answers preflights without the token", async () => {
  const { caller } = fakeCaller(() => "ok");
  const gateway = app(caller, { cors: ["https://example.com"], token: "t" });
  const preflight = await gateway.request("/api/calc:x", {
    method: "OPTIONS",
    headers: {
      origin: "https://example.com",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, authorization, prefer",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "https://example.com");
  assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
  const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
  for (const header of ["content-type", "authorization", "prefer"]) {
    assert.ok(allowed.includes(header));
  }
  const auth = { authorization: "Bearer t", origin: "https://example.com" };
  const ok = await gateway.request("/api/calc:x", post(undefined, auth));
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://example.com");
  assert.match(ok.headers.get("vary") ?? "", /Origin/);
  await ok.body?.cancel();
  // Error answers carry the header too, so the page can read them.
  const denied = await gateway.request("/api/nope:x", post(undefined, auth));
  assert.equal(denied.headers.get("access-control-allow-origin"), "https://example.com");
  await assertError(denied, 403, "Forbidden");
  const other = await gateway.request(
    "/api/calc:x",
    post(undefined, { authorization: "Bearer t", origin: "https://evil.example" }),
  );
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  await other.body?.cancel();
  // No cors option: no CORS headers at all, and no preflight route.
  const plain = app(caller);
  const none = await plain.request(
    "/api/calc:x",
    post(undefined, { origin: "https://example.com" }),
  );
  assert.equal(none.headers.get("access-control-allow-origin"), null);
  await none.body?.cancel();
  const noPreflight = await plain.request("/api/calc:x", {
    method: "OPTIONS",
    headers: { origin: "https://example.com", "access-control-request-method": "POST" },
  });
  assert.equal(noPreflight.headers.get("access-control-allow-origin"), null);
  await assertError(noPreflight, 405, "MethodNotAllowed");
});

Deno.test("gatewayApp answers 405 for other methods on /api and 404 elsewhere", async () => {
  const { caller, calls } = fakeCaller();
  const gateway = app(caller);
  for (const method of ["GET", "PUT", "DELETE"]) {
    const response = await gateway.request("/api/calc:x", { method });
    assert.equal(response.headers.get("allow"), "POST");
    await assertError(response, 405, "MethodNotAllowed");
  }
  await assertError(await gateway.request("/signal", post("[]")), 404, "NotFound");
  await assertError(await gateway.request("/api", post("[]")), 404, "NotFound");
  await assertError(await gateway.request("/api/", post("[]")), 400, "TypeError");
  assert.deepEqual(calls, []);
});

Deno.test("gatewayApp rejects options that would expose everything or cannot work", () => {
  const { caller } = fakeCaller();
  for (
    const targets of [[], ["*"], ["login"], ["login:x=cb"], [":msg"], ["calc:a b"], [">lock.*"], [
      "",
    ]]
  ) {
    assert.throws(() => gatewayApp(caller, { targets }), TypeError, JSON.stringify(targets));
  }
  assert.throws(() => gatewayApp(caller, { targets: ["calc:*"], token: "" }), TypeError);
  assert.throws(
    () => gatewayApp(caller, { targets: ["calc:*"], timeoutMs: 5000, maxTimeoutMs: 100 }),
    RangeError,
  );
  assert.throws(() => gatewayApp(caller, { targets: ["calc:*"], timeoutGraceMs: -1 }), RangeError);
  for (const key of ["maxBodyBytes", "maxInflight", "timeoutMs", "retryAfterSeconds"] as const) {
    for (const value of [0, -1, 1.5]) {
      assert.throws(() => gatewayApp(caller, { targets: ["calc:*"], [key]: value }), RangeError);
    }
  }
});
