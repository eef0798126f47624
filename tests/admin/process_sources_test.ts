/**
 * processSources against a real running process (real workers, sockets and a
 * ticket stage): the numbers it reports are the runtime's.
 */
import assert from "node:assert/strict";
import {
  adminApp,
  AdminUnavailableError,
  processSources,
  type ScriptStageInfo,
  type ServiceStageInfo,
} from "../../core/admin/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const START = REFERENCE + `
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
stage.waitfor("held", async (ms: number) => {
  stage.signal(null, 5000);
  await sleep(ms);
});
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "spin") {
    const end = Date.now() + data.ms;
    while (Date.now() < end) { /* keeps the worker busy: later frames queue */ }
  }
  if (data.op === "hold") {
    stage.signal("ticket:job=held", data.ms);
    stage.signal("ticket:job=held", data.ms);
  }
  socket.commit({ done: data.op });
});
`;

const CONFIG = {
  "#startup": [["=ticket+ticket", "script+start"]],
  "=ticket+ticket": [1, { job: 1 }],
};

Deno.test("processSources reports real stages, sockets, tickets, metrics and health", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": START },
    config: CONFIG,
    workers: 1,
  });
  let draining = false;
  const sources = processSources(fixture.running, { draining: () => draining });

  assert.deepEqual(await sources.health(), { live: true, ready: true, state: "ready" });
  const idle = await sources.stages();
  assert.deepEqual(idle.find((s) => s.id === "start"), {
    id: "start",
    kind: "script",
    state: "ready",
    instances: 1,
    queueDepth: 0,
    inFlight: 0,
    oldestQueuedMs: 0,
    sockets: 0,
    workers: { total: 1, busy: 0, inFlight: [0] },
  });
  assert.deepEqual(
    idle.find((s) => s.id === "ticket"),
    {
      id: "ticket",
      kind: "=ticket",
      state: "ready",
      instances: 1,
      queueDepth: 0,
    } satisfies ServiceStageInfo,
  );

  await using client = await FrameClient.connect(fixture.port(), "json");
  // The spin runs past the time slice: the watchdog holds the rest on the main thread
  // (and logs that the worker is stuck), so frames are queued, with an age.
  await client.send({ op: "spin", ms: 400 }, { op: "echo" }, { op: "echo" });
  const busy = await poll(
    "a busy worker with frames queued",
    async () => (await sources.stages()).find((s) => s.id === "start") as ScriptStageInfo,
    (s) => s.workers.busy === 1 && s.queueDepth >= 1 && s.oldestQueuedMs > 0,
    3000,
    10,
  );
  assert.equal(busy.inFlight, 1);
  assert.deepEqual(busy.workers.inFlight, [1]);
  assert.equal(busy.sockets, 1);

  const sockets = await sources.sockets();
  assert.equal(sockets.open, 1);
  assert.deepEqual(sockets.byStage, { start: 1 });
  assert.equal(sockets.byState.busy + sockets.byState.writing, 1, JSON.stringify(sockets));
  assert.equal(sockets.top.length, 1);
  assert.equal(sockets.top[0]?.stage, "start");
  assert.match(sockets.top[0]?.remote ?? "", /^127\.0\.0\.1:\d+$/);
  assert.ok((sockets.top[0]?.pendingFrames ?? 0) >= 1);

  const text = await sources.metricsText();
  assert.match(text, /^stage_queue_depth\{stage="start"\} [1-9]/m);
  assert.match(text, /^stage_sockets_open\{stage="start"\} 1$/m);

  for (let i = 0; i < 3; i++) await client.next(3000);
  await client.send({ op: "hold", ms: 300 });
  assert.deepEqual(await client.next(3000), { done: "hold" });
  const tickets = await poll(
    "one holder and one waiter of ticket category job",
    async () => await sources.tickets(),
    (list) => list.some((t) => t.category === "job" && t.holders === 1 && t.waiting === 1),
    3000,
    10,
  );
  assert.deepEqual(tickets.find((t) => t.category === "job")?.stage, "ticket");

  client.close();
  await poll("the socket closed", async () => (await sources.sockets()).open, (n) => n === 0);
  const closed = await sources.sockets();
  assert.equal(Object.values(closed.closed).reduce((a, b) => a + b, 0), 1);

  draining = true;
  assert.deepEqual(await sources.health(), { live: true, ready: false, state: "draining" });

  // The same numbers through the app.
  const response = await adminApp(sources).request("/stages");
  assert.equal(response.status, 200);
  assert.equal((await response.json()).length, 2);
  await poll(
    "tickets released",
    async () => await sources.tickets(),
    (list) => list.every((t) => t.holders === 0 && t.waiting === 0),
    3000,
    20,
  );
});

Deno.test("processSources calls the callbacks it is given, else the process's own", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": START }, workers: 1 });
  const unwired = processSources(fixture.running);
  await assert.rejects(() => unwired.signal("start:x", [], 1000), { name: "WaitforNotFoundError" });
  await assert.rejects(() => unwired.drain(), AdminUnavailableError);
  const routes = await unwired.routes() as { endpoint: string; stages: string[] };
  assert.deepEqual([routes.endpoint, routes.stages], ["local", ["start"]]);
  const workers = await unwired.workers() as { stage: string; worker: number }[];
  assert.deepEqual(workers.map((w) => [w.stage, w.worker]), [["start", 0]]);
  const reloaded = await unwired.reload() as { stages: { stage: string; workers: number }[] };
  assert.deepEqual(reloaded.stages.map((s) => [s.stage, s.workers]), [["start", 1]]);
  assert.deepEqual(await unwired.tickets(), [], "no ticket stage, no categories");

  const signals: unknown[] = [];
  const wired = processSources(fixture.running, {
    signal: (target, values, timeoutMs) => {
      signals.push([target, values, timeoutMs]);
      return Promise.resolve("pong");
    },
    reload: () => Promise.resolve({ reloaded: 1 }),
    drain: () => Promise.resolve(),
    routes: () => [{ route: "r" }],
    workers: () => ({ start: [] }),
    tickets: () => [{ stage: "t", category: "c", holders: 0, waiting: 0, oldestWaitMs: 0 }],
    starting: () => true,
  });
  assert.equal(await wired.signal("start:ping", [1], 50), "pong");
  assert.deepEqual(signals, [["start:ping", [1], 50]]);
  assert.deepEqual(await wired.reload(), { reloaded: 1 });
  assert.equal(await wired.drain(), undefined);
  assert.deepEqual(await wired.routes(), [{ route: "r" }]);
  assert.deepEqual(await wired.workers(), { start: [] });
  assert.equal((await wired.tickets()).length, 1);
  assert.equal((await wired.health()).state, "starting");
  assert.throws(() => processSources(fixture.running, { topSockets: -1 }), RangeError);
});
