/**
 * Flow control end to end: forced yielding (time slice, hard limit), flooding
 * and non-reading clients, overload detection — real workers, real sockets.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";
import { renderPrometheus } from "../../core/metrics/mod.ts";

/** A client-facing stage that asks the `calc` stage (two workers) for everything. */
const FRONT = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  try {
    socket.commit({ id: data.id, value: await stage.request("calc:" + data.op, data.arg) });
  } catch (error) {
    socket.commit({ id: data.id, error: error.name });
  }
});
`;

const CALC = REFERENCE + `
stage.waitfor("echo", (value) => value);
stage.waitfor("spin", (ms) => {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* no yield */ }
  return "spun";
});
stage.waitfor("spinAfterAwait", async (ms) => {
  await new Promise((resolve) => setTimeout(resolve, 1));
  const end = Date.now() + ms;
  while (Date.now() < end) { /* spins outside the record's synchronous part */ }
  return "spun";
});
stage.waitfor("yielding", async (ms) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const chunk = Date.now() + 10;
    while (Date.now() < chunk) { /* 10 ms of work */ }
    await stage.yield();
  }
  return "yielded";
});
`;

const TWO_STAGES = {
  "#startup": [["script+calc", "script+start"]],
  "#flow": { slice_ms: 50, hard_limit_ms: 2000 },
  script: { "script+start": "start", "script+calc": "calc" },
};

interface Reply {
  id: number;
  value?: unknown;
  error?: string;
}

/** Clients doing pipelined echo requests until `stop`; returns latencies and order checks. */
async function echoLoad(port: number, clients: number, until: Promise<unknown>) {
  const latencies: number[] = [];
  let sent = 0;
  let received = 0;
  let stopped = false;
  until.then(() => stopped = true);
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    await using client = await FrameClient.connect(port, "json");
    let id = 0;
    while (!stopped) {
      const started = performance.now();
      const batch = [id, id + 1, id + 2].map((n) => ({ id: n, op: "echo", arg: c * 1e6 + n }));
      await client.send(...batch);
      sent += batch.length;
      for (const request of batch) {
        const reply = await client.next<Reply>(10_000);
        assert.equal(reply.id, request.id, `client ${c}: replies out of order`);
        assert.equal(reply.value, request.arg);
        received++;
      }
      latencies.push(performance.now() - started);
      id += 3;
    }
  }));
  return { latencies, sent, received };
}

Deno.test("a handler spinning 10 s without yielding: other keys keep being served, its worker is replaced after the hard limit, its caller gets WorkerTerminatedError, nothing else is lost", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": FRONT, "calc.ts": CALC },
    config: TWO_STAGES,
  });
  const port = fixture.port("json");
  await using spinner = await FrameClient.connect(port, "json");
  // Warm up both calc workers, then start the spin.
  await spinner.send({ id: -1, op: "echo", arg: 0 });
  assert.deepEqual(await spinner.next<Reply>(), { id: -1, value: 0 });
  const spinStarted = performance.now();
  await spinner.send({ id: 1, op: "spin", arg: 10_000 });
  const spinReply = spinner.next<Reply>(15_000);
  const load = await echoLoad(port, 8, spinReply);
  const reply = await spinReply;
  const spinMs = performance.now() - spinStarted;

  assert.deepEqual(reply, { id: 1, error: "WorkerTerminatedError" });
  assert.ok(spinMs >= 1900 && spinMs < 6000, `terminated after ${spinMs} ms (hard limit 2000)`);
  assert.equal(load.received, load.sent, "a request was lost");
  assert.ok(load.latencies.length > 50, `only ${load.latencies.length} round trips were served`);
  const worst = Math.max(...load.latencies);
  // Time slice 50 ms + watchdog period + a wide margin for a loaded 2-core machine.
  assert.ok(worst < 1000, `an echo round trip took ${Math.round(worst)} ms during the spin`);
  const calc = fixture.stage("calc");
  assert.equal(calc.watchdog.terminations, 1);
  // The replacement serves again.
  await spinner.send({ id: 2, op: "echo", arg: 42 });
  assert.deepEqual(await spinner.next<Reply>(), { id: 2, value: 42 });
});

Deno.test("a handler that spins after an await (its event loop blocked outside a record) is detected and replaced the same way", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": FRONT, "calc.ts": CALC },
    config: TWO_STAGES,
  });
  const port = fixture.port("json");
  await using spinner = await FrameClient.connect(port, "json");
  await spinner.send({ id: 1, op: "spinAfterAwait", arg: 10_000 });
  const spinReply = spinner.next<Reply>(15_000);
  const load = await echoLoad(port, 8, spinReply);
  assert.deepEqual(await spinReply, { id: 1, error: "WorkerTerminatedError" });
  assert.equal(load.received, load.sent, "a request was lost");
  const worst = Math.max(...load.latencies);
  // Far below the 5 s hard limit the spinner holds its worker for (slack for a loaded CI machine).
  assert.ok(worst < 2500, `an echo round trip took ${Math.round(worst)} ms during the spin`);
  assert.equal(fixture.stage("calc").watchdog.terminations, 1);
});

Deno.test("a handler that spins but calls stage.yield() is not terminated, and others are served meanwhile", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": FRONT, "calc.ts": CALC },
    config: { ...TWO_STAGES, "#flow": { slice_ms: 50, hard_limit_ms: 1000 } },
  });
  const port = fixture.port("json");
  await using worker = await FrameClient.connect(port, "json");
  await worker.send({ id: 1, op: "yielding", arg: 2500 });
  const done = worker.next<Reply>(10_000);
  const load = await echoLoad(port, 4, done);
  assert.deepEqual(await done, { id: 1, value: "yielded" });
  assert.equal(fixture.stage("calc").watchdog.terminations, 0);
  assert.equal(load.received, load.sent);
  assert.ok(load.latencies.length > 20, `only ${load.latencies.length} round trips were served`);
});

const ECHO = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (!data.quiet) socket.commit(data);
});
`;

Deno.test("a flooding client is throttled at its pending bound while 50 well-behaved clients keep getting replies in order", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": ECHO },
    config: { "#flow": { socket_pending: 64 } },
  });
  const port = fixture.port("json");
  const flooder = await Deno.connect({ hostname: "127.0.0.1", port });
  const frame = new TextEncoder().encode(JSON.stringify({ quiet: true, pad: "x".repeat(200) }));
  const chunk = new Uint8Array((frame.length + 4) * 256);
  for (let i = 0; i < 256; i++) {
    new DataView(chunk.buffer).setInt32(i * (frame.length + 4), frame.length + 4, true);
    chunk.set(frame, i * (frame.length + 4) + 4);
  }
  let flooding = true;
  const flood = (async () => {
    try {
      while (flooding) await flooder.write(chunk);
    } catch { /* closed at the end */ }
  })();
  const stage = fixture.stage();
  const rssBefore = Deno.memoryUsage().rss;
  let maxRss = rssBefore;
  let maxPending = 0;
  const sampler = setInterval(() => {
    for (const socket of stage.broker.sockets()) {
      maxPending = Math.max(maxPending, socket.pendingFrames);
    }
    maxRss = Math.max(maxRss, Deno.memoryUsage().rss);
  }, 5);
  try {
    const latencies: number[] = [];
    await Promise.all(Array.from({ length: 50 }, async (_, c) => {
      await using client = await FrameClient.connect(port, "json");
      for (let i = 0; i < 40; i++) {
        const started = performance.now();
        await client.send({ c, i });
        assert.deepEqual(await client.next(10_000), { c, i });
        latencies.push(performance.now() - started);
      }
    }));
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    assert.ok(p99 < 500, `well-behaved p99 ${Math.round(p99)} ms while flooded`);
    // One read's worth of frames may land above the bound before reading pauses.
    assert.ok(maxPending <= 64 + 400, `the flooder had ${maxPending} frames pending`);
    assert.ok(stage.scheduler.queued < 5000, `${stage.scheduler.queued} records queued`);
    // Server and clients share this process: a fixed bound, far below what an
    // unbounded queue of the flood would take (the naive server grows by GBs).
    const growthMb = (maxRss - rssBefore) / 2 ** 20;
    assert.ok(growthMb < 200, `RSS grew ${Math.round(growthMb)} MB during the flood`);
  } finally {
    clearInterval(sampler);
    flooding = false;
    flooder.close();
    await flood;
  }
});

Deno.test("a client that never reads is closed past its outgoing bound; others are unaffected", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": ECHO },
    config: { "#flow": { socket_out_bytes: 65536 } },
  });
  const port = fixture.port("json");
  await using reader = await FrameClient.connect(port, "json");
  await using sink = await FrameClient.connect(port, "json");
  const big = { pad: "y".repeat(60_000) };
  // The kernel's socket buffers take a few MB first; then output queues in Stage.
  for (let i = 0; i < 400 && !sink.ended; i++) {
    await sink.send(big).catch(() => {});
    await reader.send({ i });
    assert.deepEqual(await reader.next(), { i });
  }
  const deadline = Date.now() + 5000;
  while (fixture.stage().broker.closedByReason.get("slow_reader") !== 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(fixture.stage().broker.closedByReason.get("slow_reader"), 1);
  await reader.send({ after: true });
  assert.deepEqual(await reader.next(), { after: true });
});

Deno.test("a slow reader's queued output shows per socket in stage_socket_top_out_queued_bytes", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": ECHO },
    config: { "#flow": { socket_out_bytes: 64 * 1024 * 1024 } },
  });
  // A raw socket that writes and never reads.
  const sink = await Deno.connect({ hostname: "127.0.0.1", port: fixture.port("json") });
  const payload = new TextEncoder().encode(JSON.stringify({ pad: "y".repeat(60_000) }));
  const frame = new Uint8Array(4 + payload.length);
  new DataView(frame.buffer).setInt32(0, frame.length, true);
  frame.set(payload, 4);
  const top = () => {
    const family = fixture.running.metrics.snapshot().find((f) =>
      f.name === "stage_socket_top_out_queued_bytes"
    );
    return family?.type === "gauge" ? family.samples[0] : undefined;
  };
  // The kernel's socket buffers take a few MB first; then output queues in Stage.
  const deadline = Date.now() + 10_000;
  let slowest = top();
  try {
    while ((slowest?.value ?? 0) < 1_000_000 && Date.now() < deadline) {
      for (let written = 0; written < frame.length;) {
        written += await sink.write(frame.subarray(written));
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
      slowest = top();
    }
  } finally {
    sink.close();
  }
  assert.ok(slowest !== undefined && slowest.value >= 1_000_000, JSON.stringify(slowest));
  assert.equal(slowest.labels.stage, "start");
  assert.match(slowest.labels.socket ?? "", /^\d+$/);
  assert.match(slowest.labels.remote ?? "", /^127\.0\.0\.1:\d+$/);
});

const SLOW = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  const end = performance.now() + 4;
  while (performance.now() < end) { /* 4 ms of work per frame */ }
  socket.commit(data);
});
`;

Deno.test("overload: dispatch delay over #router's threshold pauses accepting, lets clients in again as delays fall, and recovers without flapping", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": SLOW },
    config: { "#router": [20, 10] },
  });
  const port = fixture.port("json");
  const monitor = fixture.running.monitor;
  const broker = fixture.stage().broker;
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => FrameClient.connect(port, "json")),
  );
  try {
    // About 1,000 frames of 4 ms each on two workers: seconds of queueing.
    await Promise.all(
      clients.map((client, c) => client.send(...Array.from({ length: 100 }, (_, i) => ({ c, i })))),
    );
    const overloadBy = Date.now() + 5000;
    while (!monitor.overloaded && Date.now() < overloadBy) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(monitor.overloaded, "the process never became overloaded");
    assert.ok(broker.acceptPaused, "accepting is not paused while overloaded");
    // A newcomer is not served while overloaded (it waits in the backlog)…
    await using late = await FrameClient.connect(port, "json");
    await late.send({ late: true });
    // …every admitted frame is answered, in order…
    await Promise.all(clients.map(async (client, c) => {
      for (let i = 0; i < 100; i++) assert.deepEqual(await client.next(15_000), { c, i });
    }));
    // …the newcomer is let in once delays fall (admission reopens gradually)…
    assert.deepEqual(await late.next(10_000), { late: true });
    // …and once the delay stayed low for a whole window, the process recovers.
    const recoverBy = Date.now() + 5000;
    while (monitor.overloaded && Date.now() < recoverBy) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(!monitor.overloaded, "the process never recovered");
    const transitions = fixture.running.metrics.snapshot()
      .find((family) => family.name === "stage_overload_transitions_total");
    const total = transitions?.type === "counter"
      ? transitions.samples.reduce((sum, sample) => sum + sample.value, 0)
      : -1;
    assert.equal(total, 2, "the overload state flapped");
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});

const MOVABLE = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", (socket) => (socket, data) => {
  if (data.name) socket.name = data.name;
  if (data.spin) {
    const end = Date.now() + data.spin;
    while (Date.now() < end) { /* no yield */ }
  }
  socket.commit({ worker: stage.worker, moved: socket.moved, name: socket.name ?? null });
});
`;

Deno.test("a socket whose worker is stuck moves to another worker with its user fields; onAccept sees socket.moved", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": MOVABLE },
    config: { "#flow": { slice_ms: 50, hard_limit_ms: 5000 } },
  });
  const port = fixture.port("json");
  const clients: FrameClient[] = [];
  try {
    // Find two sockets homed on the same worker.
    const byWorker = new Map<number, FrameClient[]>();
    let pair: FrameClient[] | undefined;
    while (pair === undefined) {
      const client = await FrameClient.connect(port, "json");
      clients.push(client);
      await client.send({ name: `client${clients.length}` });
      const { worker } = await client.next<{ worker: number }>();
      const same = [...byWorker.get(worker) ?? [], client];
      byWorker.set(worker, same);
      if (same.length === 2) pair = same;
    }
    const [mover, spinner] = pair as [FrameClient, FrameClient];
    const home = await (async () => {
      await mover.send({});
      return await mover.next<{ worker: number; moved: boolean; name: string }>();
    })();
    assert.equal(home.moved, false);
    await spinner.send({ spin: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 200)); // past the slice
    const started = performance.now();
    await mover.send({});
    const moved = await mover.next<{ worker: number; moved: boolean; name: string }>(5000);
    const waited = performance.now() - started;
    assert.notEqual(moved.worker, home.worker);
    assert.equal(moved.moved, true);
    assert.equal(moved.name, home.name, "the user field did not move with the socket");
    assert.ok(waited < 1000, `the moved socket waited ${Math.round(waited)} ms`);
    // The spinning socket's own frame still completes on its worker (it was not killed).
    const spun = await spinner.next<{ worker: number }>(5000);
    assert.equal(spun.worker, home.worker);
    assert.equal(fixture.stage().watchdog.terminations, 0);
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});

Deno.test("the process's metrics registry counts dispatch delay, bytes, sockets and closes, and renders as Prometheus text", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("json");
  await using client = await FrameClient.connect(port, "json");
  for (let i = 0; i < 20; i++) {
    await client.send({ i });
    assert.deepEqual(await client.next(), { i });
  }
  const snapshot = fixture.running.metrics.snapshot();
  const family = (name: string) => {
    const found = snapshot.find((candidate) => candidate.name === name);
    assert.ok(found !== undefined, `no metric ${name}`);
    return found;
  };
  const delay = family("stage_dispatch_delay_seconds");
  assert.ok(delay.type === "histogram" && delay.samples[0]!.count >= 20);
  const bytes = family("stage_socket_bytes_total");
  assert.ok(bytes.type === "counter");
  const bytesIn = bytes.samples.find((sample) => sample.labels.direction === "in")!.value;
  assert.ok(bytesIn >= 20 * 10, `bytes in: ${bytesIn}`);
  const open = family("stage_sockets_open");
  assert.equal(open.type !== "histogram" && open.samples[0]!.value, 1);
  for (
    const name of [
      "stage_queue_depth",
      "stage_queue_oldest_seconds",
      "stage_in_flight",
      "stage_worker_busy_seconds_total",
      "stage_overloaded",
      "stage_worker_yields_total",
    ]
  ) family(name);
  assert.match(text0(snapshot), /^# TYPE stage_socket_closed_total counter$/m);
  const text = renderPrometheus(snapshot, { process: "0" });
  assert.match(text, /# TYPE stage_dispatch_delay_seconds histogram/);
  assert.match(
    text,
    /stage_dispatch_delay_seconds_bucket\{process="0",stage="start",le="\+Inf"\} \d+/,
  );
});

/** The snapshot in the text format, for checks on the `# TYPE` lines. */
function text0(snapshot: Parameters<typeof renderPrometheus>[0]): string {
  return renderPrometheus(snapshot);
}

Deno.test("connect/disconnect churn through real workers leaves no socket, flow or per-IP entry behind", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("json");
  const stage = fixture.stage();
  const cycles = 2000;
  let done = 0;
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (done < cycles) {
      done++;
      const client = await FrameClient.connect(port, "json");
      if (done % 2 === 0) {
        await client.send({ done });
        await client.next();
      }
      await client[Symbol.asyncDispose]();
    }
  }));
  const deadline = Date.now() + 5000;
  while (
    (stage.broker.socketCount > 0 || stage.scheduler.flowCount > 0 ||
      stage.scheduler.inFlightTotal > 0) && Date.now() < deadline
  ) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(stage.broker.socketCount, 0);
  assert.deepEqual(stage.broker.registrySizes(), {
    connections: 0,
    dirty: 0,
    inbound: 0,
    perIp: 0,
  });
  assert.equal(stage.scheduler.flowCount, 0, "flows left behind in the scheduler");
  assert.equal(stage.scheduler.queued, 0);
  assert.equal(stage.broker.closedByReason.get("peer"), cycles);
});

Deno.test("hundreds of handlers awaiting I/O on one worker do not block the replies they wait for", async () => {
  const slowCalc = REFERENCE + `
stage.waitfor("echo", async (value) => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return value;
});
`;
  await using fixture = await startFixture({
    scripts: { "start.ts": FRONT, "calc.ts": slowCalc },
    config: TWO_STAGES,
    workers: 1,
  });
  const port = fixture.port("json");
  const clients = await Promise.all(
    Array.from({ length: 400 }, () => FrameClient.connect(port, "json")),
  );
  try {
    await Promise.all(clients.map((client, c) => client.send({ id: c, op: "echo", arg: c })));
    const replies = await Promise.all(clients.map((client) => client.next<Reply>(15_000)));
    replies.forEach((reply, c) => assert.deepEqual(reply, { id: c, value: c }));
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});
