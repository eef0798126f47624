/**
 * The ticket service stage end to end: script stages on real workers ask a
 * `=ticket+ticket` stage for slots over the process's bus.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { type Fixture, REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const START = REFERENCE + `
const stats = stage.shared("stats", { now: 0, max: 0, done: 0 });
const feedback = stage.shared("feedback", { queued: 0, granted: 0, cancelled: 0 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

stage.waitfor("fb", (_request: string, result: boolean | string) => {
  feedback.update((f) => result === true ? { ...f, queued: f.queued + 1 }
    : result === false ? { ...f, cancelled: f.cancelled + 1 } : { ...f, granted: f.granted + 1 });
});

// A ticketed job: counts how many run at once; the last one reports to the socket.
stage.waitfor("job", async (socketId: number, total: number, ms: number) => {
  stats.update((s) => ({ ...s, now: s.now + 1, max: Math.max(s.max, s.now + 1) }));
  await sleep(ms);
  const after = stats.update((s) => ({ ...s, now: s.now - 1, done: s.done + 1 }));
  if (after.done === total) {
    broker.f(socketId).commit({ max: after.max, done: after.done, feedback: feedback.get() });
  }
});

// Holds its slot past the default hold time by extending it.
stage.waitfor("long", async (socketId: number, ms: number) => {
  stage.signal(null, 5000);
  broker.f(socketId).commit({ event: "long-start", ticket: stage.context?.ticket?.category });
  await sleep(ms);
  broker.f(socketId).commit({ event: "long-end" });
});
stage.waitfor("next", (socketId: number) => broker.f(socketId).commit({ event: "next-start" }));

// Spins past the hard limit: the watchdog terminates this worker.
stage.waitfor("spin", (socketId: number) => {
  stage.signal(null, 60_000);
  broker.f(socketId).commit({ event: "spin-start" });
  for (;;) {}
});

stage.waitfor("ticket:@", (request: string, reason: string, category: string) => {
  const socketId = stage.shared("notify", 0).get();
  broker.f(socketId).commit({ event: "@", reason, category, request: typeof request });
});
stage.waitfor("ticket:=room", (text: string) => {
  const socketId = stage.shared("notify", 0).get();
  broker.f(socketId).commit({ event: "room", text, kind: stage.context?.ticket?.id ? "holder" : "waiter" });
});
stage.waitfor("member", () => stage.signal(null, 5000) && sleep(300));

broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  stage.shared("notify", 0).set(socket.id);
  switch (data.op) {
    case "burst":
      for (let i = 0; i < data.n; i++) stage.signal("ticket:job=job?fb", socket.id, data.n, data.ms);
      return;
    case "hold":
      stage.signal("ticket:solo=long", socket.id, data.ms);
      stage.signal("ticket:solo=next", socket.id);
      return;
    case "crash":
      stage.signal("ticket:crash=spin", socket.id);
      stage.signal("ticket:crash=next", socket.id);
      return;
    case "deadline":
      stage.signal("ticket:solo=long", socket.id, 400);
      stage.signal("ticket:solo=next?fb/50", socket.id);
      return;
    case "room":
      stage.signal("ticket:room=member", 1);
      stage.signal("ticket:room=member", 2);
      stage.signal("ticket:room=member", 3);
      await sleep(50);
      socket.commit({ reached: await stage.request("ticket:=room", "hi") });
      return;
    case "define":
      socket.commit({
        defined: await stage.request("ticket:@vip", -1),
        stats: (await stage.request("ticket:#")).find((s: { name: string }) => s.name === "vip"),
      });
      return;
    case "bad":
      socket.commit({ error: await stage.request("ticket:@vip", "lots").catch((e) => e.name) });
      return;
  }
});
`;

async function withTickets<T>(
  categories: Record<string, number>,
  run: (client: FrameClient, fixture: Fixture) => Promise<T>,
): Promise<T> {
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+start", "=ticket+ticket"]],
      "=ticket+ticket": [1, categories],
      "#flow": { slice_ms: 50, hard_limit_ms: 300 },
    },
    scripts: { "start.ts": START },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  return await run(client, fixture);
}

type Event = { event: string; reason?: string; category?: string; text?: string; kind?: string };

Deno.test("ticket: 60 jobs from two workers never run more than the limit at once, and all complete", async () => {
  await withTickets({ job: 3 }, async (client) => {
    await client.send({ op: "burst", n: 60, ms: 15 });
    const result = await client.next<
      { max: number; done: number; feedback: Record<string, number> }
    >(15_000);
    assert.equal(result.done, 60);
    assert.ok(result.max <= 3, `at most 3 at once, saw ${result.max}`);
    assert.equal(result.max, 3, "the limit is used: 3 ran at once");
    assert.equal(result.feedback.granted, 60, "feedback got a ticket id for every grant");
    assert.ok((result.feedback.queued ?? 0) >= 50, "feedback said 'queued' for those that waited");
  });
});

Deno.test("ticket: signal(null, ms) keeps the slot past the default hold; the next waiter starts after it ends", async () => {
  await withTickets({ solo: 1 }, async (client, fixture) => {
    await client.send({ op: "hold", ms: 1300 });
    const events: Event[] = [await client.next<Event>(10_000)];
    // Meanwhile "next" waits in line, and the metrics say so.
    const gauge = (name: string) => {
      const family = fixture.running.metrics.snapshot().find((f) => f.name === name);
      if (family === undefined || family.type === "histogram") return undefined;
      return family.samples.find((sample) => sample.labels.category === "solo");
    };
    assert.equal(gauge("stage_ticket_waiting")?.value, 1);
    assert.equal(gauge("stage_ticket_holders")?.value, 1);
    assert.ok(gauge("stage_ticket_oldest_wait_seconds") !== undefined);
    const depth = fixture.running.metrics.snapshot().find((f) => f.name === "stage_queue_depth");
    assert.ok(
      depth?.samples.some((sample) => sample.labels.stage === "ticket"),
      "the service stage's queue depth is a metric too",
    );
    for (let i = 0; i < 2; i++) events.push(await client.next<Event>(10_000));
    assert.deepEqual(events.map((e) => e.event), ["long-start", "long-end", "next-start"]);
  });
});

Deno.test("ticket: a holder whose worker is terminated releases its slot at once", async () => {
  await withTickets({ crash: 1 }, async (client) => {
    await client.send({ op: "crash" });
    assert.equal((await client.next<Event>(10_000)).event, "spin-start");
    // The hold was extended to 60 s: only the lost worker's release lets the next one in.
    assert.equal((await client.next<Event>(10_000)).event, "next-start");
  });
});

Deno.test("ticket: a waiter past its deadline is cancelled (feedback false, ticket:@ 'deadline')", async () => {
  await withTickets({ solo: 1 }, async (client) => {
    await client.send({ op: "deadline" });
    const events: Event[] = [];
    for (let i = 0; i < 3; i++) events.push(await client.next<Event>(10_000));
    assert.deepEqual(events.map((e) => e.event), ["long-start", "@", "long-end"]);
    assert.equal(events[1]!.reason, "deadline");
    assert.equal(events[1]!.category, "solo");
  });
});

Deno.test("ticket:=category reaches every holder and waiter; ticket:@ with a bad limit errors; # reports", async () => {
  await withTickets({ room: 2 }, async (client) => {
    await client.send({ op: "room" });
    const seen: Event[] = [];
    let reached: number | undefined;
    while (seen.length < 3 || reached === undefined) {
      const next = await client.next<Event & { reached?: number }>(10_000);
      if (next.reached !== undefined) reached = next.reached;
      else seen.push(next);
    }
    assert.equal(reached, 3);
    assert.deepEqual(seen.map((e) => e.kind).sort(), ["holder", "holder", "waiter"]);
    await client.send({ op: "define" });
    assert.deepEqual(await client.next(), {
      defined: true,
      stats: { name: "vip", limit: -1, holders: 0, waiting: 0, oldestWaitMs: 0, closed: false },
    });
    await client.send({ op: "bad" });
    assert.deepEqual(await client.next(), { error: "TypeError" });
  });
});
