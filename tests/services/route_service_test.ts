/**
 * The route service stage end to end: script stages on real workers subscribe
 * to a `=route+route` stage and messages reach them through it.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

/**
 * A subscriber stage (s1, s2, s3; plain1 has no route:@ handler). `do` sends a
 * value to route:@ from this worker; `mode` sets what it answers when asked.
 */
const SUB = REFERENCE + `
const mode = stage.shared("mode." + stage.id, true as unknown);
const got = stage.shared("got." + stage.id, 0);
stage.waitfor("do", (control: unknown) => stage.request("route:@", control));
stage.waitfor("mode", (value: unknown) => { mode.set(value); return true; });
stage.waitfor("count", () => got.get());
if (!stage.id.startsWith("plain")) {
  stage.waitfor("route:@", (id: string, argument: string) => {
    const answer = mode.get();
    // Answers after the route stage stopped waiting (its probe timeout is 1 s).
    if (answer === "slow") return new Promise((resolve) => setTimeout(() => resolve(true), 1300));
    return answer;
  });
}
const take = (...values: unknown[]) => {
  got.update((n) => n + 1);
  const { from, query } = stage.context!;
  return { by: stage.id, worker: stage.worker, values, from, query: query ?? null };
};
stage.waitfor("job", take);
stage.waitfor("news", take);
stage.waitfor("explicit", (n: number) => { stage.signal(null, n * 10); });
`;

/** Self-subscribing (every worker at load): the subscriber is the (stage, worker) pair. */
const EACH = REFERENCE + `
stage.signal("route:@", { job: "job" });
stage.waitfor("job", () => ({ by: stage.id, worker: stage.worker }));
`;

/** The client's stage: `ask` awaits a request, `signal` fires; callbacks push events. */
const START = REFERENCE + `
const client = stage.shared("client", -1);
const push = (event: unknown) => broker.f(client.get()).commit(event);
stage.waitfor("returned", (value: unknown) => push({ event: "returned", value }));
stage.waitfor("failed", (...values: unknown[]) =>
  push({ event: "failed", values, query: stage.context!.query ?? null }));
broker.ready("tcp://127.0.0.1:0?json", (socket) => {
  client.set(socket.id);
  return async (socket, data) => {
    try {
      if (data.op === "signal") return void stage.signal(data.target, ...data.values);
      socket.commit({ ok: await stage.request(data.target, ...data.values) });
    } catch (error) {
      socket.commit({ error: error.name, message: error.message });
    }
  };
});
`;

interface Taken {
  by: string;
  worker: number;
  values: unknown[];
  from: { stage: string; worker: number };
  query: string | null;
}

type Answer<T = unknown> = { ok: T } | { error: string; message: string };

interface Io {
  client: FrameClient;
  ask<T = unknown>(target: string, ...values: unknown[]): Promise<Answer<T>>;
  /** `ask` that must succeed. */
  ok<T = unknown>(target: string, ...values: unknown[]): Promise<T>;
  signal(target: string, ...values: unknown[]): Promise<void>;
}

const SUBSCRIBERS = ["s1", "s2", "s3", "plain1"];

async function withRoute(run: (io: Io) => Promise<void>): Promise<void> {
  const stages = Object.fromEntries(SUBSCRIBERS.map((id) => [`script+${id}`, "sub"]));
  await using fixture = await startFixture({
    workers: 1,
    config: {
      "#startup": [["=route+route", "script+start", ...Object.keys(stages)]],
      script: stages,
    },
    scripts: { "start.ts": START, "sub.ts": SUB },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  const ask = async <T>(target: string, ...values: unknown[]) => {
    await client.send({ op: "ask", target, values });
    return await client.next<Answer<T>>();
  };
  const ok = async <T>(target: string, ...values: unknown[]) => {
    const answer = await ask<T>(target, ...values);
    if (!("ok" in answer)) throw new Error(`${target}: ${answer.error}: ${answer.message}`);
    return answer.ok;
  };
  const signal = (target: string, ...values: unknown[]) =>
    client.send({ op: "signal", target, values });
  await run({ client, ask, ok, signal });
}

/** Who takes each of `n` requests to `route:id`, in order. */
async function takers(io: Io, target: string, n: number): Promise<string[]> {
  const by: string[] = [];
  for (let i = 0; i < n; i++) by.push((await io.ok<Taken>(target, i)).by);
  return by;
}

/** Sends to route:job until `who` takes one; asserts that took at least `ms` since `since`. */
async function untilTaken(io: Io, who: string, since: number, ms: number): Promise<void> {
  for (let by = ""; by !== who;) {
    assert.ok(Date.now() - since < ms + 5000, `${who} never took a message again`);
    by = (await io.ok<Taken>("route:job", 0)).by;
  }
  assert.ok(Date.now() - since >= ms, `${who} took a message before its pause ended`);
}

Deno.test("route: a subscriber that declines never gets a message; one that accepts does, as the sender's", async () => {
  await withRoute(async (io) => {
    assert.equal(await io.ok("s1:do", { job: "job" }), true);
    assert.equal(await io.ok("s2:do", { job: "job" }), true);
    await io.ok("s2:mode", false);
    const taken = await io.ok<Taken>("route:job?urgent", "work", 7);
    assert.deepEqual(taken, {
      by: "s1",
      worker: 0,
      values: ["work", 7],
      from: { stage: "start", worker: 0 },
      query: "urgent",
    }, "the receiver sees the original sender, values and argument");
    assert.deepEqual(await takers(io, "route:job", 4), ["s1", "s1", "s1", "s1"]);
    assert.equal(await io.ok("s2:count"), 0, "the one that declined got nothing");

    // A subscriber without a route:@ waitfor takes whatever comes.
    await io.ok("plain1:do", { job: "job" });
    assert.deepEqual((await takers(io, "route:job", 4)).sort(), ["plain1", "plain1", "s1", "s1"]);

    // Answering null unsubscribes from that id: renewing finds nothing left.
    await io.ok("s1:mode", null);
    assert.deepEqual(await takers(io, "route:job", 2), ["plain1", "plain1"]);
    await io.ok("s1:mode", true);
    assert.deepEqual(await takers(io, "route:job", 2), ["plain1", "plain1"]);
    assert.equal(await io.ok("s1:do", true), false, "s1 has no subscription to renew");
  });
});

Deno.test("route: messages spread round robin among the willing", async () => {
  await withRoute(async (io) => {
    for (const id of ["s1", "s2", "s3"]) await io.ok(`${id}:do`, { job: "job" });
    const by = await takers(io, "route:job", 6);
    assert.deepEqual(by, ["s1", "s2", "s3", "s1", "s2", "s3"]);
    await io.ok("s2:mode", false);
    const willing = await takers(io, "route:job", 4);
    assert.deepEqual(willing, ["s1", "s3", "s1", "s3"]);
  });
});

Deno.test("route: a paused subscriber is skipped, with a time until it resumes by itself", async () => {
  await withRoute(async (io) => {
    await io.ok("s1:do", { job: "job" });
    await io.ok("s2:do", { job: "job" });
    assert.equal(await io.ok("s1:do", false), true);
    assert.deepEqual(await takers(io, "route:job", 3), ["s2", "s2", "s2"]);
    assert.equal(await io.ok("s1:do", true), true, "true resumes");
    assert.deepEqual((await takers(io, "route:job", 2)).sort(), ["s1", "s2"]);

    const paused = Date.now();
    await io.ok("s1:do", 400);
    assert.deepEqual(await takers(io, "route:job", 2), ["s2", "s2"]);
    // Bounded wait for the pause to end: s1 takes messages again without being told.
    await untilTaken(io, "s1", paused, 400);

    // A number as the answer declines and pauses: s1 is not asked again meanwhile.
    const declined = Date.now();
    await io.ok("s1:mode", 400);
    assert.deepEqual(await takers(io, "route:job", 1), ["s2"]);
    await io.ok("s1:mode", true);
    assert.deepEqual(await takers(io, "route:job", 1), ["s2"], "paused: not asked");
    await untilTaken(io, "s1", declined, 400);
  });
});

Deno.test("route: route:*id reaches every willing subscriber", async () => {
  await withRoute(async (io) => {
    for (const id of ["s1", "s2", "plain1"]) await io.ok(`${id}:do`, { news: "news" });
    await io.ok("s2:mode", false);
    await io.signal("route:*news?hot=returned", "headline");
    const events = [await io.client.next(), await io.client.next()] as {
      value: Taken;
    }[];
    assert.deepEqual(events.map((e) => e.value.by).sort(), ["plain1", "s1"]);
    for (const { value } of events) {
      assert.deepEqual(value.values, ["headline"]);
      assert.equal(value.query, "hot");
    }
    assert.equal(await io.ok("s2:count"), 0, "the unwilling subscriber got nothing");
    assert.equal(await io.ok("s1:count"), 1);
  });
});

Deno.test("route: what nobody takes goes back to !fail, or rejects the request with RouteUnavailableError", async () => {
  await withRoute(async (io) => {
    await io.signal("route:ghost?why=returned!failed", 1, "two");
    assert.deepEqual(await io.client.next(), { event: "failed", values: [1, "two"], query: "why" });

    const none = await io.ask("route:ghost", 1);
    assert.ok("error" in none);
    assert.equal(none.error, "RouteUnavailableError");
    assert.match(none.message, /"ghost"/);

    await io.ok("s1:do", { job: "job" });
    await io.ok("s1:mode", false);
    assert.equal(
      (await io.ask("route:job", 1) as { error: string }).error,
      "RouteUnavailableError",
    );
    await io.signal("route:*job!failed", "all");
    assert.deepEqual(await io.client.next(), { event: "failed", values: ["all"], query: null });

    // A subscriber that does not answer within the probe timeout declined.
    await io.ok("s1:mode", "slow");
    const started = Date.now();
    assert.equal(
      (await io.ask("route:job", 1) as { error: string }).error,
      "RouteUnavailableError",
    );
    assert.ok(Date.now() - started >= 900, "gave up before the probe timeout");
  });
});

Deno.test("route: the receiver's reply goes to the sender's return_cb or resolves its request", async () => {
  await withRoute(async (io) => {
    await io.ok("s1:do", { job: "job", explicit: "explicit" });
    await io.signal("route:job=returned", "hi");
    const event = await io.client.next<{ event: string; value: Taken }>();
    assert.equal(event.event, "returned");
    assert.equal(event.value.by, "s1");
    assert.deepEqual(event.value.values, ["hi"]);
    assert.equal(await io.ok("route:explicit", 4), 40, "stage.signal(null, v) in the receiver");
  });
});

Deno.test("route: bad route:@ values are refused with an error naming the value", async () => {
  await withRoute(async (io) => {
    const cases: [unknown, string, RegExp][] = [
      [{ job: 5 }, "TypeError", /"job".*5/],
      [{ "a b": "cb" }, "TypeError", /"a b"/],
      ["hello", "TypeError", /"hello"/],
      [-1, "RangeError", /-1/],
    ];
    for (const [value, name, text] of cases) {
      const answer = await io.ask("s1:do", value);
      assert.ok("error" in answer, `${JSON.stringify(value)} was accepted`);
      assert.equal(answer.error, name);
      assert.match(answer.message, text);
    }
    assert.equal(await io.ok("s1:do", null), false, "nothing to unsubscribe");
  });
});

Deno.test("route: each worker of a stage is its own subscriber and gets its own deliveries", async () => {
  await using fixture = await startFixture({
    workers: 2,
    config: {
      "#startup": [["=route+route", "script+start", "script+each"]],
      script: { "script+each": "each" },
    },
    scripts: { "start.ts": START, "each.ts": EACH },
  });
  // Both workers subscribed at load; wait (bounded) until the route stage counts them.
  const subscribers = () => {
    const family = fixture.running.metrics.snapshot().find((f) =>
      f.name === "stage_route_subscribers"
    );
    return family?.type === "gauge" ? family.samples[0]?.value : undefined;
  };
  for (const start = Date.now(); subscribers() !== 2;) {
    assert.ok(Date.now() - start < 5000, `subscribers: ${subscribers()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await using client = await FrameClient.connect(fixture.port(), "json");
  const workers: number[] = [];
  for (let i = 0; i < 4; i++) {
    await client.send({ op: "ask", target: "route:job", values: [i] });
    const answer = await client.next<{ ok: { by: string; worker: number } }>();
    assert.equal(answer.ok.by, "each");
    workers.push(answer.ok.worker);
  }
  assert.deepEqual(workers.sort(), [0, 0, 1, 1]);
});
