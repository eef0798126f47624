/**
 * Several process groups on one machine under `stage run --supervise`: every
 * message form crosses processes through the supervisor's local bus.
 *
 * Group 0 runs `front` (a JSON TCP port for the test) and the ticket stage;
 * groups 1 and 2 each run an instance of `calc`.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE } from "../_helpers/stage_fixture.ts";
import {
  freePort,
  type LogLine,
  StageProcess,
  writeDeployment,
} from "../_helpers/stage_process.ts";

const config = (shared: number) => ({
  "#threads": [2, 10000],
  "#services": { tcp: [`127.0.0.1:${shared}`] },
  "#startup": [["script+front", "=ticket+ticket"], ["script+calc"], ["script+calc"]],
  "=ticket+ticket": [1, { job: 3 }],
  script: { "%package": ["scripts"], "script+front": "front", "script+calc": "calc" },
});

const CALC = REFERENCE + `
// Both instances listen on one #services port: the kernel spreads connections over them.
broker.ready("tcp://127.0.0.1:" + process.args[0] + "?json", () => (socket) => {
  socket.commit({ group: process.id });
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
stage.waitfor("who", () => process.id);
stage.waitfor("ping", () => { stage.signal("front:pong", process.id); });
stage.waitfor("slow", async (ms: number) => { await sleep(ms); return process.id; });
// A ticketed job: the front counts how many run at once, machine-wide.
stage.waitfor("job", async (ms: number) => {
  stage.signal(null, 10_000); // hold the slot however slow this machine is
  stage.signal("front:track", +1);
  await sleep(ms);
  stage.signal("front:track", -1);
});
stage.waitfor("go", (n: number, ms: number) => {
  for (let i = 0; i < n; i++) stage.signal("ticket:job=job", ms);
});
`;

const front = (port: number) =>
  REFERENCE + `
const jobs = stage.shared("jobs", { now: 0, max: 0, done: 0 });
const pongs = stage.shared("pongs", [] as number[]);
// One serial waitfor: starts and ends are counted in the order they arrive (an end
// travels before the release that lets the next job start, so it arrives first).
stage.waitfor.serial("track", (step: number) => {
  jobs.update((j) => step > 0
    ? { ...j, now: j.now + 1, max: Math.max(j.max, j.now + 1) }
    : { ...j, now: j.now - 1, done: j.done + 1 });
});
stage.waitfor("pong", (group: number) => { pongs.update((p) => [...p, group]); });

broker.ready("tcp://127.0.0.1:${port}?json", () => async (socket, data) => {
  try {
    switch (data.op) {
      case "spread": {
        const groups = await Promise.all(
          Array.from({ length: data.n }, () => stage.request("calc:who", { timeout: 5000 })),
        );
        const by: Record<string, number> = {};
        for (const group of groups) by[group] = (by[group] ?? 0) + 1;
        return socket.commit({ by });
      }
      case "broadcast":
        stage.signal("*calc:ping");
        return;
      case "pongs":
        return socket.commit({ pongs: pongs.get() });
      case "tickets":
        stage.signal("*calc:go", data.n, data.ms);
        return;
      case "jobs":
        return socket.commit(jobs.get());
      case "slow":
        return socket.commit({ group: await stage.request("calc:slow", data.ms, { timeout: 20000 }) });
      case "who":
        return socket.commit({ group: await stage.request("calc:who", { timeout: 5000 }) });
    }
  } catch (error) {
    socket.commit({ error: error.name, message: error.message });
  }
});
`;

const isStart = (group: number) => (line: LogLine) =>
  line.message.startsWith("Started the child of") && line.properties.group === group;

/** Kills any child still running, so a failing test cannot leave orphans. */
function killLeftovers(stage: StageProcess): void {
  for (const line of stage.lines) {
    const pid = line.properties.pid;
    if (!isStart(line.properties.group as number)(line) || typeof pid !== "number") continue;
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}

async function ask<T>(client: FrameClient, value: Record<string, unknown>, ms = 10_000) {
  await client.send(value);
  return await client.next<T>(ms);
}

/** Opens `n` connections to the shared port; returns the groups that answered, sorted. */
async function sharedGroups(port: number, n: number): Promise<number[]> {
  const groups = new Set<number>();
  for (let i = 0; i < n; i++) {
    await using conn = await FrameClient.connect(port, "json");
    await conn.send({});
    groups.add((await conn.next<{ group: number }>(5000)).group);
  }
  return [...groups].sort();
}

async function withCluster(
  run: (client: FrameClient, stage: StageProcess, port: number, shared: number) => Promise<void>,
) {
  const port = freePort();
  let shared = freePort();
  while (shared === port) shared = freePort();
  const deployment = await writeDeployment(config(shared), {
    "front.ts": front(port),
    "calc.ts": CALC,
  });
  const dir = deployment.dir;
  try {
    await using stage = new StageProcess([
      "run",
      "--supervise",
      "--config",
      deployment.config,
      "--",
      String(shared),
    ]);
    try {
      // Every group is up: its stages started and it told the hub (which routes by it).
      const ready = (line: LogLine) => /^Process group \d+ is ready/.test(line.message);
      await stage.waitFor((line) => ready(line) && stage.lines.filter(ready).length >= 3);
      await stage.waitFor((line) => line.message.includes("listening on"));
      await using client = await FrameClient.connect(port, "json");
      // Membership reaches every process shortly after the hellos.
      await poll(
        "calc on the bus",
        () => ask<{ group?: number }>(client, { op: "who" }),
        (r) => r.group !== undefined,
      );
      await run(client, stage, port, shared);
      stage.signal("SIGTERM");
      assert.equal(await stage.exitCode(), 0);
    } finally {
      killLeftovers(stage);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("multi-process: round robin across two instances, * reaches both, a ticket limit holds across 3 processes", async () => {
  await withCluster(async (client) => {
    const { by } = await ask<{ by: Record<string, number> }>(client, { op: "spread", n: 400 });
    assert.deepEqual(Object.keys(by).sort(), ["1", "2"], "both instances served");
    for (const count of Object.values(by)) {
      assert.ok(
        count >= 160 && count <= 240,
        `each instance within ±20% of 200: ${JSON.stringify(by)}`,
      );
    }

    await client.send({ op: "broadcast" });
    const { pongs } = await poll(
      "pongs",
      () => ask<{ pongs: number[] }>(client, { op: "pongs" }),
      (r) => r.pongs.length >= 2,
    );
    assert.deepEqual([...pongs].sort(), [1, 2]);

    // 2 × 30 jobs asked from groups 1 and 2; the ticket stage in group 0 allows 3 at once.
    await client.send({ op: "tickets", n: 30, ms: 20 });
    const jobs = await poll(
      "jobs",
      () => ask<{ max: number; done: number; now: number }>(client, { op: "jobs" }),
      (j) => j.done === 60,
      20_000,
    );
    assert.ok(jobs.max <= 3, `at most 3 jobs at once across processes, saw ${jobs.max}`);
    assert.equal(jobs.max, 3);
    assert.equal(jobs.now, 0);
  });
});

Deno.test("multi-process: kill -9 an instance — its in-flight request fails at once, new work goes to the live one, it comes back", async () => {
  await withCluster(async (client, stage, port, shared) => {
    const pids = new Map<number, number>();
    for (const group of [1, 2]) {
      pids.set(group, (await stage.waitFor(isStart(group))).properties.pid as number);
    }
    assert.deepEqual(await sharedGroups(shared, 40), [1, 2], "the shared port is served by both");
    // Park a slow request on each instance, then kill group 2's process.
    await using other = await FrameClient.connect(port, "json");
    await client.send({ op: "slow", ms: 4000 });
    await other.send({ op: "slow", ms: 4000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    Deno.kill(pids.get(2)!, "SIGKILL");
    const failed = await Promise.race([
      client.next<{ error?: string }>(10_000),
      other.next<{ error?: string }>(10_000),
    ]);
    assert.equal(failed.error, "WorkerTerminatedError", JSON.stringify(failed));
    assert.ok(Date.now() - started < 2000, "the request failed promptly, not at its timeout");

    // The dead process's share of the port moved: every new connection is answered.
    for (const group of await sharedGroups(shared, 20)) assert.ok(group === 1 || group === 2);

    // Until group 2 is back, every request is served by group 1.
    await using third = await FrameClient.connect(port, "json");
    for (let i = 0; i < 10; i++) {
      const reply = await ask<{ group?: number; error?: string }>(third, { op: "who" });
      if (reply.group !== undefined) assert.equal(reply.group === 1 || reply.group === 2, true);
      else assert.fail(`a request failed while an instance was down: ${JSON.stringify(reply)}`);
    }
    const restarted = await stage.waitFor((line) =>
      isStart(2)(line) && line.properties.pid !== pids.get(2)
    );
    assert.equal(restarted.properties.starts, 2);
    await poll(
      "group 2 serving again",
      () => ask<{ by: Record<string, number> }>(third, { op: "spread", n: 40 }),
      (r) => (r.by["2"] ?? 0) > 0,
      15_000,
    );
  });
});
