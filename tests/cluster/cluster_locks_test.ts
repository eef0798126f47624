/**
 * Cluster-wide ordering locks: two "machines" (two BusHubs, node names alpha
 * and beta), four ProcessBus endpoints each with its own NATS link to one real
 * nats-server, recording members standing in for stages. A ManualClock drives
 * holds, leases and heartbeats; NATS traffic is real, so deliveries are polled
 * for with a deadline.
 */
import assert from "node:assert/strict";
import { BusHub } from "../../core/cluster/bus_hub.ts";
import { NatsLink } from "../../core/cluster/nats_link.ts";
import { ProcessBus } from "../../core/cluster/process_bus.ts";
import type { BusMember } from "../../core/cluster/local_bus.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { packValues, unpackValues } from "../../core/message/mod.ts";
import { decodeSignalHeader, encodeSignal, type SignalHeader } from "../../core/pool/wire.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";
import { startNatsServer } from "../_helpers/nats_server.ts";

const log = coreLogger("test");

/**
 * A stage that records the grants it gets (`[worker, callback, ...values]`),
 * and every machine's in arrival order in `order` (`endpoint:first value`).
 */
class Recorder implements BusMember {
  readonly id = "start";
  readonly grants: unknown[][] = [];
  constructor(readonly endpoint: string, readonly order: string[]) {}
  deliver(header: SignalHeader, body: Uint8Array): void {
    const values = unpackValues(decodeSignalHeader(body).values);
    this.grants.push([header.worker, header.message, ...values]);
    this.order.push(`${this.endpoint}:${values[0]}`);
  }
}

interface Machine {
  endpoint: string;
  bus: ProcessBus;
  link: NatsLink;
  stage: Recorder;
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

type Op = "acquire" | "extend" | "release";

/** A lock request from worker `worker` of stage "start" (what `stage.signal(">L.cb")` routes). */
function lock(
  m: Machine,
  op: Op,
  options: { worker?: number; callback?: string; ms?: number; values?: unknown[] } = {},
): void {
  const callback = options.callback ?? (op === "release" ? "*" : "turn");
  const header: SignalHeader = {
    stage: "start",
    scope: "one",
    message: callback,
    from: { stage: "start", worker: options.worker ?? 0 },
    lock: { op, name: "L", callback, ...(options.ms === undefined ? {} : { ms: options.ms }) },
  };
  m.bus.route(encodeSignal(header, packValues(options.values ?? []).bytes));
}

/**
 * Runs `run` with alpha/0, beta/0, alpha/1, beta/1 started in that order (so
 * the oldest, alpha/0, keeps the locks) once every endpoint sees all four and
 * agrees on the keeper.
 */
async function withCluster(
  run: (m: Record<string, Machine>, clock: ManualClock) => Promise<void>,
): Promise<void> {
  await using server = await startNatsServer();
  const clock = new ManualClock();
  await using hubA = await BusHub.start({ clock, log });
  await using hubB = await BusHub.start({ clock, log });
  const machines: Record<string, Machine> = {};
  const order: string[] = [];
  try {
    for (const endpoint of ["alpha/0", "beta/0", "alpha/1", "beta/1"]) {
      const node = endpoint.split("/")[0]!;
      const link = await NatsLink.connect({ servers: [server.url], name: endpoint, log });
      const bus = await ProcessBus.connect({
        path: node === "alpha" ? hubA.path : hubB.path,
        node,
        endpoint,
        log,
        nats: { link, clock, allowRemoteCode: false },
      });
      const stage = new Recorder(endpoint, order);
      bus.join(stage);
      bus.ready();
      machines[endpoint] = { endpoint, bus, link, stage };
      clock.advance(1); // each one younger than the one before
    }
    const all = Object.values(machines);
    await until(
      "every endpoint sees the others and agrees on the keeper",
      () =>
        all.every((m) =>
          m.bus.peers.filter((p) => p.stages.includes("start")).length ===
            (m.bus.peers.some((p) => p.endpoint === m.endpoint) ? 4 : 3) &&
          m.bus.locks?.keeper === "alpha/0"
        ),
    );
    await run(machines, clock);
  } finally {
    for (const m of Object.values(machines)) await m.bus[Symbol.asyncDispose]();
  }
}

/** Grants received by every machine in arrival order, as `endpoint:value`. */
function granted(m: Record<string, Machine>): string[] {
  return Object.values(m)[0]!.stage.order;
}

/** Lets lock traffic and lease renewals through NATS (every link's round trip, twice). */
async function settle(m: Record<string, Machine>): Promise<void> {
  const live = Object.values(m).filter((x) => x.link.connected);
  for (let round = 0; round < 2; round++) await Promise.all(live.map((x) => x.link.flush()));
}

Deno.test("ClusterLocks: one keeper for the cluster grants turns one at a time across machines, FIFO", async () => {
  await withCluster(async (m) => {
    const keeper = m["alpha/0"]!.bus.locks!;
    lock(m["beta/0"]!, "acquire", { values: ["b0"] });
    await until("the first turn", () => granted(m).length === 1);
    assert.deepEqual(m["beta/0"]!.stage.grants, [[0, "turn", "b0"]], "callback and values");
    // The others queue, each seen at the keeper before the next asks.
    const queue = [["alpha/1", "a1"], ["beta/1", "b1"], ["alpha/0", "a0"], ["beta/0", "b0-again"]];
    for (const [index, [endpoint, value]] of queue.entries()) {
      lock(m[endpoint!]!, "acquire", { worker: 1, values: [value] });
      await until(`${endpoint} queued`, () => keeper.inspect("L")?.waiting === index + 1);
    }
    assert.equal(granted(m).length, 1, "nobody else has a turn while beta/0 holds it");

    // A waiter that gives up leaves the queue ("<L.turn" while waiting).
    lock(m["beta/0"]!, "release", { worker: 1, callback: "turn" });
    await until("beta/0's wait cancelled", () => keeper.inspect("L")?.waiting === 3);

    for (const [endpoint] of [["beta/0"], ...queue.slice(0, 3)]) {
      const before = granted(m).length;
      const worker = endpoint === "beta/0" ? 0 : 1;
      lock(m[endpoint!]!, "release", { worker });
      await until("the next turn", () => granted(m).length > before || before === 4);
      assert.equal(granted(m).length, Math.min(before + 1, 4), "one turn per release");
    }
    assert.deepEqual(granted(m), ["beta/0:b0", "alpha/1:a1", "beta/1:b1", "alpha/0:a0"]);
    assert.deepEqual(m["alpha/1"]!.stage.grants, [[1, "turn", "a1"]], "on the worker that asked");
    await until("the lock is free", () => keeper.inspect("L")?.holder === undefined);
  });
});

Deno.test("ClusterLocks: a hold expires after 100 ms or when its extension runs out; repeats are ignored", async () => {
  await withCluster(async (m, clock) => {
    const keeper = m["alpha/0"]!.bus.locks!;
    lock(m["beta/0"]!, "acquire", { values: ["first"] });
    await until("the first turn", () => granted(m).length === 1);
    lock(m["alpha/1"]!, "acquire", { values: ["second"] });
    await until("alpha/1 queued", () => keeper.inspect("L")?.waiting === 1);
    clock.advance(99);
    assert.equal(granted(m).length, 1, "within the 100 ms hold");
    clock.advance(1);
    await until("the expired hold's successor", () => granted(m).length === 2);
    assert.deepEqual(granted(m), ["beta/0:first", "alpha/1:second"]);

    // alpha/1 keeps its turn for 5 s; a later request from the same process (after the extend
    // on the same path) tells when the keeper has the extension.
    lock(m["alpha/1"]!, "extend", { ms: 5000 });
    lock(m["alpha/1"]!, "acquire", { worker: 1, values: ["third"] });
    await until("alpha/1 queued again", () => keeper.inspect("L")?.waiting === 1);
    lock(m["beta/1"]!, "acquire", { values: ["fourth"] });
    await until("beta/1 queued", () => keeper.inspect("L")?.waiting === 2);
    // Past a heartbeat and the re-send period: the waiters send their requests again.
    for (let t = 0; t < 4900; t += 700) {
      clock.advance(700);
      await settle(m);
    }
    lock(m["beta/1"]!, "acquire", { worker: 2, values: ["fifth"] });
    await until("the fresh request", () => (keeper.inspect("L")?.waiting ?? 0) >= 3);
    assert.equal(keeper.inspect("L")?.waiting, 3, "repeated requests were not queued twice");
    assert.equal(granted(m).length, 2, "the extension holds");
    clock.advance(100);
    await until("the extension's end", () => granted(m).length === 3);
    assert.equal(granted(m)[2], "alpha/1:third");
  });
});

Deno.test("ClusterLocks: when the keeper leaves, the next oldest keeps the locks and the waiters get their turns", async () => {
  await withCluster(async (m, clock) => {
    lock(m["beta/0"]!, "acquire", { values: ["held"] });
    await until("the first turn", () => granted(m).length === 1);
    lock(m["beta/1"]!, "acquire", { values: ["b1"] });
    lock(m["alpha/1"]!, "acquire", { values: ["a1"] });
    const keeper = m["alpha/0"]!.bus.locks!;
    await until("both queued", () => keeper.inspect("L")?.waiting === 2);

    // The keeper stops (it says goodbye): beta/0, started next, takes over at once.
    await m["alpha/0"]!.bus[Symbol.asyncDispose]();
    delete m["alpha/0"];
    const rest = Object.values(m);
    await until("a new keeper", () => rest.every((x) => x.bus.locks?.keeper === "beta/0"));
    const next = m["beta/0"]!.bus.locks!;
    await settle(m);
    assert.equal(granted(m).length, 1, "the new keeper lets old turns run out first");
    clock.advance(100);
    // The old keeper's hold is lost; one waiter has the turn, the other waits behind it.
    await until(
      "a waiter's turn",
      () => granted(m).length === 2 && next.inspect("L")?.waiting === 1,
    );
    const first = granted(m)[1]!;
    assert.ok(first === "beta/1:b1" || first === "alpha/1:a1", first);
    lock(m[first.split(":")[0]!]!, "release");
    await until("the other waiter's turn", () => granted(m).length === 3);
    assert.deepEqual(granted(m).slice(1).sort(), ["alpha/1:a1", "beta/1:b1"]);
  });
});

Deno.test("ClusterLocks: a keeper that vanishes without goodbye is replaced when its lease ends", async () => {
  await withCluster(async (m, clock) => {
    lock(m["beta/0"]!, "acquire", { values: ["held"] });
    await until("the first turn", () => granted(m).length === 1);
    lock(m["alpha/1"]!, "acquire", { values: ["a1"] });
    lock(m["beta/1"]!, "acquire", { values: ["b1"] });
    await until("both queued", () => m["alpha/0"]!.bus.locks!.inspect("L")?.waiting === 2);

    // alpha/0's NATS connection goes first: no goodbye reaches beta, which waits out its lease
    // (alpha/1, on the same machine, sees it leave the hub at once).
    await m["alpha/0"]!.link.close();
    await m["alpha/0"]!.bus[Symbol.asyncDispose]();
    delete m["alpha/0"];
    await until("alpha/1 sees it gone", () => m["alpha/1"]!.bus.locks?.keeper === "beta/0");
    assert.equal(m["beta/1"]!.bus.locks?.keeper, "alpha/0", "still within its lease at beta");
    let elapsed = 0;
    while (m["beta/0"]!.bus.locks?.keeper !== "beta/0") {
      // A 3 s lease, checked on every 1 s heartbeat.
      assert.ok(elapsed < 4000, `the lease ends within 4 s (now ${elapsed} ms)`);
      clock.advance(250);
      elapsed += 250;
      await settle(m);
    }
    // Grace (100 ms), then alpha/1's periodic re-send (its keeper did not change again) reaches
    // the new keeper: both waiters have their turns.
    for (let t = 0; t < 1200 && granted(m).length < 2; t += 100) {
      clock.advance(100);
      await settle(m);
    }
    await until("a waiter's turn", () => granted(m).length === 2);
    const first = granted(m)[1]!;
    lock(m[first.split(":")[0]!]!, "release");
    for (let t = 0; t < 1200 && granted(m).length < 3; t += 100) {
      clock.advance(100);
      await settle(m);
    }
    await until("the other waiter's turn", () => granted(m).length === 3);
    assert.deepEqual(granted(m).slice(1).sort(), ["alpha/1:a1", "beta/1:b1"]);
  });
});
