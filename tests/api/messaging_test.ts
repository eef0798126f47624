/**
 * stage.waitfor / signal / request / context between the stages of one process,
 * over real workers.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const CALC = REFERENCE + `
stage.waitfor("add", (a: number, b: number) => a + b);
stage.waitfor("slow", async (ms: number) => { await new Promise((r) => setTimeout(r, ms)); return ms; });
stage.waitfor("fail", () => { throw new RangeError("calc refuses"); });
stage.waitfor("run", (fn: (v: string) => string, value: string) => fn(value));
stage.waitfor("who", () => ({ ...stage.context, me: stage.id }));
stage.waitfor("start:", (text: string) => stage.signal(null, "by sender: " + text));
stage.waitfor("explicit", (n: number) => { stage.signal(null, n * 10); });
`;

const START = REFERENCE + `
stage.waitfor("g.", (text: string) => "group " + text);
stage.waitfor("g.m.", (text: string) => "subgroup " + text);
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  try {
    switch (data.op) {
      case "add": return socket.commit(await stage.request("calc:add", 2, 3));
      case "fail": return socket.commit(await stage.request("calc:fail"));
      case "missing": return socket.commit(await stage.request("nowhere:x"));
      case "timeout": return socket.commit(await stage.request("calc:slow", 500, { timeout: 50 }));
      case "run": return socket.commit(await stage.request("calc:run", (v: string) => "RESULT:" + v, "HELLO"));
      case "capture": {
        const secret = 42;
        return socket.commit(await stage.request("calc:run", () => secret, 0));
      }
      case "who": return socket.commit(await stage.request("calc:who"));
      case "bysender": return socket.commit(await stage.request("calc+hello", "hi"));
      case "explicit": return socket.commit(await stage.request("calc:explicit", 4));
      case "sync": return socket.commit([stage.signal(":g.m.x", "a"), stage.signal(":g.z", "b")]);
      case "reply-outside": return socket.commit({ error: (stage.signal(null, 1) as Error).message });
      case "malformed": {
        const result = stage.signal("a::b", 1);
        return socket.commit({ name: (result as Error).name, message: (result as Error).message });
      }
      case "pending": return socket.commit(stage.waitfor("add") === undefined ? "clean" : "left");
      case "named-failure": {
        const id = stage.waitfor((value: unknown) => {
          stage.waitfor(id, null);
          socket.commit({ isError: value instanceof Error, name: (value as Error).name, message: (value as Error).message });
        });
        stage.signal("calc:fail=" + id);
        return;
      }
    }
  } catch (error) {
    socket.commit({ error: error.name, message: error.message });
  }
});
`;

async function withStages<T>(run: (client: FrameClient) => Promise<T>): Promise<T> {
  await using fixture = await startFixture({
    config: { "#startup": [["script+start", "script+calc"]], script: { "script+calc": "calc" } },
    scripts: { "start.ts": START, "calc.ts": CALC },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  return await run(client);
}

Deno.test("stage.request reaches another stage and resolves with the handler's return value", async () => {
  await withStages(async (client) => {
    await client.send({ op: "add" });
    assert.equal(await client.next(), 5);
    await client.send({ op: "explicit" });
    assert.equal(await client.next(), 40, "stage.signal(null, …) replies explicitly");
  });
});

Deno.test("stage.request rejects with the receiver's error, an unknown stage, or a timeout", async () => {
  await withStages(async (client) => {
    await client.send({ op: "fail" });
    assert.deepEqual(await client.next(), { error: "RangeError", message: "calc refuses" });
    await client.send({ op: "missing" });
    assert.equal((await client.next<{ error: string }>()).error, "StageNotFoundError");
    await client.send({ op: "timeout" });
    assert.equal((await client.next<{ error: string }>()).error, "RequestTimeoutError");
  });
});

Deno.test("a named reply waitfor gets the receiver's failure as a rebuilt Error", async () => {
  await withStages(async (client) => {
    await client.send({ op: "named-failure" });
    assert.deepEqual(await client.next(), {
      isError: true,
      name: "RangeError",
      message: "calc refuses",
    });
  });
});

Deno.test("a function sent to another stage runs there (the FAQ example); a capture is refused by name", async () => {
  await withStages(async (client) => {
    await client.send({ op: "run" });
    assert.equal(await client.next(), "RESULT:HELLO");
    await client.send({ op: "capture" });
    const refused = await client.next<{ error: string; message: string }>();
    assert.equal(refused.error, "CapturedVariableError");
    assert.match(refused.message, /"secret"/);
  });
});

Deno.test("stage.context, target+msg delivery by sender, sync group lookup and reply errors", async () => {
  await withStages(async (client) => {
    await client.send({ op: "who" });
    const who = await client.next<Record<string, unknown>>();
    assert.equal(who.waitfor, "who");
    assert.equal(who.message, "who");
    assert.equal(who.me, "calc");
    assert.equal((who.from as { stage: string }).stage, "start");
    assert.equal((who.reply as { stage: string }).stage, "start");
    await client.send({ op: "bysender" });
    assert.equal(await client.next(), "by sender: hi");
    await client.send({ op: "sync" });
    assert.deepEqual(await client.next(), ["subgroup a", "group b"]);
    await client.send({ op: "reply-outside" });
    assert.match((await client.next<{ error: string }>()).error, /no message being handled/);
    await client.send({ op: "malformed" });
    assert.deepEqual(await client.next(), {
      name: "TypeError",
      message: `Cannot parse target "a::b": empty message id after ':'`,
    });
  });
});

Deno.test("waitfor.serial handlers never overlap, plain async handlers do", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
const span = async (ms: number) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return [start, Date.now(), stage.worker];
};
stage.waitfor.serial("one.at.a.time", span);
stage.waitfor("any.time", span);
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const spans = await Promise.all([1, 2, 3, 4].map(() => stage.request(data.id, 80)));
  socket.commit(spans);
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  type Span = [number, number, number];
  const overlaps = (spans: Span[]) => {
    const sorted = [...spans].sort((a, b) => a[0] - b[0]);
    return sorted.some((span, i) => i > 0 && span[0] < sorted[i - 1]![1]);
  };
  await client.send({ id: "one.at.a.time" });
  assert.equal(overlaps(await client.next<Span[]>()), false, "serial handlers overlapped");
  await client.send({ id: "any.time" });
  assert.equal(overlaps(await client.next<Span[]>()), true, "plain handlers ran one at a time");
});

Deno.test("stage.shared is one variable per process: updates from every worker and stage add up exactly", async () => {
  await using fixture = await startFixture({
    workers: 2,
    config: { "#startup": [["script+start", "script+calc"]], script: { "script+calc": "calc" } },
    scripts: {
      "calc.ts": REFERENCE + `
const hits = stage.shared("hits", { n: 0 });
stage.waitfor("bump", (times: number) => {
  for (let i = 0; i < times; i++) hits.update((v) => ({ n: v.n + 1 }));
  return stage.worker;
});
`,
      "start.ts": REFERENCE + `
const hits = stage.shared("hits", { n: 0 });
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  if (data.op === "bump") {
    const workers = await Promise.all(Array.from({ length: 20 }, () => stage.request("calc:bump", 500)));
    for (let i = 0; i < 500; i++) hits.update((v) => ({ n: v.n + 1 }));
    return socket.commit({ workers: [...new Set(workers)].length });
  }
  socket.commit(hits.get());
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ op: "bump" });
  const bumped = await client.next<{ workers: number }>(20_000);
  assert.ok(bumped.workers >= 1);
  await client.send({ op: "read" });
  assert.deepEqual(await client.next(), { n: 20 * 500 + 500 });
});

Deno.test("stage.submit runs calls of one key in order and never overlapping; a numeric result reschedules", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "jobs.ts":
        `export function tick(n: number) { stage.shared("ticks", 0).update((v: number) => v + 1); return n > 1 ? undefined : undefined; }\n`,
      "start.ts": REFERENCE + `
const log = stage.shared("log", {} as Record<string, { order: number[]; running: number; overlaps: number }>);
stage.shared("ticks", 0);
const again = stage.shared("again", 0);
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  if (data.op === "go") {
    for (let seq = 0; seq < 200; seq++) {
      const key = "k" + (seq % 10);
      stage.submit(key, async (key: string, seq: number) => {
        const log = stage.shared("log", {});
        log.update((v) => {
          const e = v[key] ?? { order: [], running: 0, overlaps: 0 };
          if (e.running > 0) e.overlaps++;
          e.running++;
          e.order.push(seq);
          return { ...v, [key]: e };
        });
        await new Promise((resolve) => setTimeout(resolve, 1));
        log.update((v) => ({ ...v, [key]: { ...v[key], running: v[key].running - 1 } }));
      }, key, seq);
    }
    stage.submit(0, "jobs+tick", 1);
    stage.submit(7, () => stage.shared("again", 0).update((v: number) => v + 1) < 3 ? 5 : undefined);
    return socket.commit("submitted");
  }
  socket.commit({ log: log.get(), ticks: stage.shared("ticks", 0).get(), again: again.get() });
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ op: "go" });
  assert.equal(await client.next(), "submitted");
  type Log = Record<string, { order: number[]; running: number; overlaps: number }>;
  let state: { log: Log; ticks: number; again: number } | undefined;
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    await client.send({ op: "read" });
    state = await client.next();
    const done = Object.values(state!.log).reduce((n, e) => n + e.order.length, 0);
    if (done === 200 && state!.again >= 3 && state!.ticks === 1) break;
  }
  for (let k = 0; k < 10; k++) {
    const entry = state!.log["k" + k]!;
    assert.deepEqual(
      entry.order,
      Array.from({ length: 20 }, (_, i) => i * 10 + k),
      `order of k${k}`,
    );
    assert.equal(entry.overlaps, 0, `k${k} overlapped`);
  }
  assert.equal(state!.ticks, 1, "a file+export submit ran");
  assert.equal(state!.again, 3, "a numeric result rescheduled the call until it stopped");
});

Deno.test("ordering locks: contenders take turns one at a time in FIFO order; an unreleased hold expires", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
const turns = stage.shared("turns", [] as [number, number, number][]);
stage.waitfor("my.turn", async (n: number) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  turns.update((v) => [...v, [n, start, Date.now()]]);
  stage.signal("<LOGIN.*");
});
stage.waitfor("never.release", () => {
  turns.update((v) => [...v, [-1, Date.now(), Date.now()]]);
});
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "contend") {
    for (let n = 0; n < 6; n++) stage.signal(">LOGIN.my.turn", n);
    return socket.commit("queued");
  }
  if (data.op === "stuck") {
    stage.signal(">STUCK.never.release");
    stage.signal(">STUCK.never.release");
    return socket.commit("queued");
  }
  socket.commit(turns.get());
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ op: "contend" });
  assert.equal(await client.next(), "queued");
  type Turn = [number, number, number];
  let turns: Turn[] = [];
  for (let i = 0; i < 100 && turns.length < 6; i++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    await client.send({ op: "read" });
    turns = await client.next<Turn[]>();
  }
  assert.deepEqual(turns.map((t) => t[0]), [0, 1, 2, 3, 4, 5], "FIFO order");
  for (let i = 1; i < turns.length; i++) {
    assert.ok(turns[i]![1] >= turns[i - 1]![2], `turn ${i} started before turn ${i - 1} ended`);
  }
  await client.send({ op: "stuck" });
  assert.equal(await client.next(), "queued");
  const started = Date.now();
  for (let i = 0; i < 100 && turns.filter((t) => t[0] === -1).length < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.send({ op: "read" });
    turns = await client.next<Turn[]>();
  }
  const stuck = turns.filter((t) => t[0] === -1);
  assert.equal(stuck.length, 2, "the second contender got its turn after the first hold expired");
  assert.ok(stuck[1]![1] - stuck[0]![1] >= 90, "not before the 100 ms hold expired");
  assert.ok(Date.now() - started < 2000);
});

Deno.test("stage.addtask runs tasks after their delay, one at a time per stage, repeats and cancels", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
const spans = stage.shared("spans", [] as [string, number, number][]);
const repeats = stage.shared("repeats", 0);
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "tasks") {
    for (let i = 0; i < 3; i++) {
      stage.addtask(10, async (name: string) => {
        const start = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 40));
        spans.update((v) => [...v, [name, start, Date.now()]]);
      }, "w" + stage.worker + "." + i);
    }
    let runs = 0; // tasks run on the worker that added them: closures are fine
    const repeating = stage.addtask(0, () => {
      repeats.update((n) => n + 1);
      return ++runs < 3 ? 5 : undefined;
    });
    const cancelled = stage.addtask(50, () => spans.update((v) => [...v, ["cancelled", 0, 0]]));
    return socket.commit({ cancel: stage.addtask(cancelled, null), again: stage.addtask(cancelled, null), repeating });
  }
  socket.commit({ spans: spans.get(), repeats: repeats.get() });
});
`,
    },
  });
  const port = fixture.port();
  await using a = await FrameClient.connect(port, "json");
  await using b = await FrameClient.connect(port, "json");
  await a.send({ op: "tasks" });
  await b.send({ op: "tasks" });
  const first = await a.next<{ cancel: boolean; again: boolean; repeating: string }>();
  await b.next();
  assert.equal(first.cancel, true);
  assert.equal(first.again, false, "a handle cancels once");
  assert.equal(typeof first.repeating, "string");
  type Span = [string, number, number];
  let state: { spans: Span[]; repeats: number } = { spans: [], repeats: 0 };
  for (let i = 0; i < 100 && (state.spans.length < 6 || state.repeats < 6); i++) {
    await new Promise((resolve) => setTimeout(resolve, 30));
    await a.send({ op: "read" });
    state = await a.next();
  }
  assert.equal(state.spans.length, 6, JSON.stringify(state));
  assert.equal(state.repeats, 6, "each repeating task ran three times");
  const sorted = [...state.spans].sort((x, y) => x[1] - y[1]);
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(sorted[i]![1] >= sorted[i - 1]![2], "two tasks of the stage overlapped");
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  await a.send({ op: "read" });
  state = await a.next();
  assert.ok(!state.spans.some((s) => s[0] === "cancelled"), "a cancelled task ran");
});

Deno.test("thread.new runs a function on a worker; thread.signal messages arrive, then the return value, then callbacks are removed", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  const seen: unknown[] = [];
  const handle = thread.new(async (n: number, fail: boolean) => {
    for (let i = 0; i < n; i++) thread.signal({ step: i, id: thread.id });
    if (fail) throw new TypeError("thread failed");
    return "finished";
  }, 3, data.fail);
  handle.waitfor((value, done) => {
    seen.push(value instanceof Error ? { error: value.name } : value);
    if (done) socket.commit({ id: handle.id, seen, outside: thread.id ?? null });
  });
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ fail: false });
  const ok = await client.next<{ id: string; seen: unknown[]; outside: null }>();
  assert.deepEqual(ok.seen, [
    { step: 0, id: ok.id },
    { step: 1, id: ok.id },
    { step: 2, id: ok.id },
    "finished",
  ]);
  assert.equal(ok.outside, null);
  await client.send({ fail: true });
  const failed = await client.next<{ seen: unknown[] }>();
  assert.deepEqual(failed.seen.at(-1), { error: "TypeError" });
});

Deno.test("10,000 submits on 100 keys from two workers: per-key order per submitter, no overlap, both workers busy", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
type Key = { running: number; overlaps: number; last: Record<string, number>; disorder: number; done: number };
const stats = stage.shared("stats", { keys: {} as Record<string, Key>, workers: [] as number[] });
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "submit") {
    for (let seq = 0; seq < 5000; seq++) {
      stage.submit("key" + (seq % 100), async (key: string, from: string, seq: number) => {
        const stats = stage.shared("stats", { keys: {}, workers: [] });
        stats.update((s) => {
          const k = s.keys[key] ?? { running: 0, overlaps: 0, last: {}, disorder: 0, done: 0 };
          if (k.running > 0) k.overlaps++;
          if ((k.last[from] ?? -1) >= seq) k.disorder++;
          k.last[from] = seq;
          k.running++;
          const workers = s.workers.includes(stage.worker) ? s.workers : [...s.workers, stage.worker];
          return { keys: { ...s.keys, [key]: k }, workers };
        });
        await Promise.resolve();
        stats.update((s) => {
          const k = s.keys[key];
          return { ...s, keys: { ...s.keys, [key]: { ...k, running: k.running - 1, done: k.done + 1 } } };
        });
      }, "key" + (seq % 100), "socket" + socket.id, seq);
    }
    return socket.commit("ok");
  }
  socket.commit(stats.get());
});
`,
    },
  });
  const port = fixture.port();
  await using a = await FrameClient.connect(port, "json");
  await using b = await FrameClient.connect(port, "json");
  await Promise.all([a.send({ op: "submit" }), b.send({ op: "submit" })]);
  assert.equal(await a.next(30_000), "ok");
  assert.equal(await b.next(30_000), "ok");
  type Stats = {
    keys: Record<string, { overlaps: number; disorder: number; done: number }>;
    workers: number[];
  };
  let stats: Stats = { keys: {}, workers: [] };
  for (let i = 0; i < 300; i++) {
    await a.send({ op: "read" });
    stats = await a.next<Stats>(10_000);
    if (Object.values(stats.keys).reduce((n, k) => n + k.done, 0) === 10_000) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const keys = Object.values(stats.keys);
  assert.equal(keys.length, 100);
  assert.equal(keys.reduce((n, k) => n + k.done, 0), 10_000);
  assert.equal(keys.reduce((n, k) => n + k.overlaps, 0), 0, "two calls of one key overlapped");
  assert.equal(keys.reduce((n, k) => n + k.disorder, 0), 0, "a key ran out of submission order");
  assert.equal(stats.workers.length, 2, "both workers ran submits");
});

Deno.test("many interleaved requests each get their own reply and leave no waitfor behind", async () => {
  await using fixture = await startFixture({
    workers: 2,
    config: { "#startup": [["script+start", "script+calc"]], script: { "script+calc": "calc" } },
    scripts: {
      "calc.ts": REFERENCE + `stage.waitfor("echo", async (n: number) => {
  await new Promise((resolve) => setTimeout(resolve, n % 7));
  return n;
});\n`,
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket) => {
  const sent = Array.from({ length: 500 }, (_, i) => i);
  const replies = await Promise.all(sent.map((n) => stage.request("calc:echo", n)));
  const wrong = replies.filter((reply, i) => reply !== i).length;
  // deno-lint-ignore no-explicit-any
  socket.commit({ wrong, left: (stage as any).messaging.registry.size });
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({});
  const result = await client.next<{ wrong: number; left: number | string }>(20_000);
  assert.equal(result.wrong, 0);
  assert.equal(result.left, 0, "generated reply ids were unregistered");
});

Deno.test('the FAQ example as written: a function sent to another stage runs there and its result comes back to "result"', async () => {
  await using fixture = await startFixture({
    config: { "#startup": [["script+start", "script+stage"]], script: { "script+stage": "other" } },
    scripts: {
      // The receiving stage (id "stage") runs what it is sent.
      "other.ts": REFERENCE +
        `stage.waitfor("callback", (fn: (v: string) => string, v: string) => fn(v));\n`,
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket) => {
  stage.waitfor("result", (r: string) => socket.commit("RESULT: " + r));
  stage.signal("stage:callback=result", function (v: string) {
    return "RESULT:" + v;
  }, "HELLO");
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({});
  assert.equal(await client.next(), "RESULT: RESULT:HELLO");
});
