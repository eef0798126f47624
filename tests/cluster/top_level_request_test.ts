/**
 * `await stage.request(...)` at a script's top level, over real workers: the
 * reply reaches a worker whose main script is still evaluating (on both load
 * paths), a failure rejects there, and new work waits until the worker is ready.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

/** A configuration stage started before `app`; `get` answers after `hold` ms. */
const CONFIG = REFERENCE + `
let calls = 0;
let hold = 0;
stage.waitfor("hold", (ms: number) => { hold = ms; return ms; });
stage.waitfor("get", async () => {
  calls++;
  if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
  return { name: "demo", calls };
});
stage.waitfor("poke", () => stage.signal("app:early", "poked"));
`;

/** Top level: a request to `config`, to the ticket service, and `stage.once`. */
const APP = REFERENCE + `
const cfg = await stage.request<{ name: string }>("config:get");
const stats = await stage.request<unknown[]>("ticket:#");
const first = await stage.once("app.init", () => {});
stage.waitfor("cfg", () => ({ name: cfg.name, stats: Array.isArray(stats), once: typeof first }));
`;

const STARTUP = {
  "#startup": [["=ticket+ticket", "script+config", "script+app"]],
  script: { "script+config": "config", "script+app": "app" },
};

async function topLevelRequests(transpile: boolean): Promise<void> {
  await using fixture = await startFixture({
    config: STARTUP,
    scripts: { "config.ts": CONFIG, "app.ts": APP },
    workers: 2,
    transpile,
  });
  const { caller } = fixture.running;
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => caller.request("app:cfg", [], 2000)),
  );
  for (const answer of answers) {
    assert.deepEqual(answer, { name: "demo", stats: true, once: "boolean" });
  }
  assert.equal(fixture.stage("app").state, "ready");
}

Deno.test("stage.request awaited at a script's top level gets replies from an earlier stage and ticket:#", async () => {
  await topLevelRequests(false);
});

Deno.test("stage.request awaited at a script's top level works on the transpiled load path", async () => {
  await topLevelRequests(true);
});

Deno.test("stage.request at a script's top level to a missing or later stage rejects there", async () => {
  const app = REFERENCE + `
const errors: string[] = [];
for (const target of ["nowhere:get", "later:get"]) {
  try {
    await stage.request(target, { timeout: 3000 });
    errors.push("resolved");
  } catch (error) {
    errors.push(error.name + ": " + error.message);
  }
}
stage.waitfor("errors", () => errors);
`;
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+app", "script+later"]],
      script: { "script+app": "app", "script+later": "later" },
    },
    scripts: { "app.ts": app, "later.ts": REFERENCE + `stage.waitfor("get", () => 1);\n` },
    workers: 1,
  });
  const errors = await fixture.running.caller.request("app:errors", [], 2000) as string[];
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /^StageNotFoundError: .*no stage "nowhere"/);
  assert.match(errors[1]!, /^StageNotFoundError: .*no stage "later"/, "stages start in order");
  assert.equal(await fixture.running.caller.request("later:get", [], 2000), 1);
});

Deno.test("stage.request failing at a script's top level fails the stage's start, naming why", async () => {
  const started = Date.now();
  await assert.rejects(
    startFixture({
      config: { "#startup": [["script+app"]], script: { "script+app": "app" } },
      scripts: { "app.ts": REFERENCE + `await stage.request("nowhere:get");\n` },
      workers: 1,
    }),
    (error: Error) => {
      assert.equal(error.name, "StageStartError");
      assert.match(error.message, /Stage "app" failed to start/);
      assert.match(error.message, /no stage "nowhere"/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 5000, "failed at once, not after the request timeout");
});

Deno.test("a message sent to a stage while its top level awaits a reply runs after the top level", async () => {
  // config's get handler, asked at app's top level, first sends app new work.
  const config = REFERENCE + `
stage.waitfor("get", async () => {
  stage.signal("app:early", "new work");
  await new Promise((resolve) => setTimeout(resolve, 100));
  return "cfg";
});
`;
  const app = REFERENCE + `
const seen: string[] = [];
stage.waitfor("early", (what: string) => { seen.push(what); });
seen.push("top level got " + await stage.request("config:get"));
stage.waitfor("seen", () => seen);
`;
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+config", "script+app"]],
      script: { "script+config": "config", "script+app": "app" },
    },
    scripts: { "config.ts": config, "app.ts": app },
    workers: 1,
  });
  const { caller } = fixture.running;
  const seen = await poll(
    "app's log",
    () => caller.request("app:seen", [], 2000) as Promise<string[]>,
    (log) => log.length >= 2,
    5000,
  );
  assert.deepEqual(seen, ["top level got cfg", "new work"]);
});

Deno.test("a reply to a waitfor registered further down a top level waits until the script loaded", async () => {
  const config = REFERENCE + `
stage.waitfor("echo", (value: string) => value);
stage.waitfor("get", async () => {
  await new Promise((resolve) => setTimeout(resolve, 100));
  return "cfg";
});
`;
  // The echo's reply goes to waitfor "named", which exists only after the await.
  const app = REFERENCE + `
const got: string[] = [];
stage.signal("config:echo=named", "echoed");
const cfg = await stage.request("config:get");
stage.waitfor("named", (value: string) => { got.push(value); });
stage.waitfor("got", () => [cfg, ...got]);
`;
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+config", "script+app"]],
      script: { "script+config": "config", "script+app": "app" },
    },
    scripts: { "config.ts": config, "app.ts": app },
    workers: 1,
  });
  const got = await poll(
    "app's replies",
    () => fixture.running.caller.request("app:got", [], 2000) as Promise<string[]>,
    (values) => values.length >= 2,
    5000,
  );
  assert.deepEqual(got, ["cfg", "echoed"]);
});

Deno.test("a socket frame that arrives while a replacement worker's top level awaits a reply waits for it", async () => {
  const app = REFERENCE + `
const log: string[] = [];
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  log.push("frame " + data.n);
  socket.commit([...log]);
});
const cfg = await stage.request<{ calls: number }>("config:get");
log.push("ready " + cfg.calls);
`;
  await using fixture = await startFixture({
    config: STARTUP,
    scripts: { "config.ts": CONFIG, "app.ts": app },
    workers: 1,
  });
  const { caller } = fixture.running;
  await using client = await FrameClient.connect(fixture.port("", "app"), "json");
  await client.send({ n: 1 });
  assert.deepEqual(await client.next(), ["ready 1", "frame 1"]);

  // From now on config answers after 300 ms: the reload's probe (call 2: its
  // top-level request is answered too) and the replacement worker (call 3)
  // both wait at their top level.
  await caller.request("config:hold", [300], 2000);
  const reload = fixture.stage("app").reload();
  await poll(
    "worker replaced",
    () => Promise.resolve(fixture.stage("app").workers()[0]?.restarts ?? 0),
    (restarts) => restarts === 1,
    5000,
    2,
  );
  await client.send({ n: 2 });
  assert.deepEqual(await client.next(), ["ready 3", "frame 2"]);
  const report = await reload;
  assert.equal(report.unfinished, 0);
});
