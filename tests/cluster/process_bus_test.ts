/**
 * The local bus: three ProcessBus endpoints connected to one BusHub over real
 * Unix sockets, with recording members standing in for stages.
 */
import assert from "node:assert/strict";
import { BusHub } from "../../core/cluster/bus_hub.ts";
import { ProcessBus } from "../../core/cluster/process_bus.ts";
import { BusFrame, encodeControl, encodeMessage } from "../../core/cluster/bus_frames.ts";
import { connectBus, framedConnection } from "../../core/cluster/bus_socket.ts";
import type { BusMember } from "../../core/cluster/local_bus.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { packValues, unpackValues } from "../../core/message/mod.ts";
import {
  decodeSignalHeader,
  encodeSignal,
  replyHeader,
  type SignalHeader,
} from "../../core/pool/wire.ts";
import { systemClock } from "../../core/time/mod.ts";

interface Received {
  header: SignalHeader;
  values: unknown[];
}

class Recorder implements BusMember {
  readonly received: Received[] = [];
  #waiters: (() => void)[] = [];
  constructor(readonly id: string, readonly where: string) {}
  deliver(header: SignalHeader, body: Uint8Array): void {
    this.received.push({ header, values: unpackValues(decodeSignalHeader(body).values) });
    for (const wake of this.#waiters.splice(0)) wake();
  }
  /** Waits (bounded) until `n` messages arrived. */
  async count(n: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (Date.now() > deadline) {
        throw new Error(`${this.id}@${this.where}: ${this.received.length} of ${n} messages`);
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.received;
  }
}

const log = coreLogger("test");

function message(header: Partial<SignalHeader> & { stage: string }, ...values: unknown[]) {
  const full: SignalHeader = {
    scope: "one",
    message: "msg",
    from: { stage: "start", worker: 0 },
    ...header,
  };
  return encodeSignal(full, packValues(values).bytes);
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function withBus(
  run: (buses: ProcessBus[], members: Recorder[][], hub: BusHub) => Promise<void>,
): Promise<void> {
  await using hub = await BusHub.start({ clock: systemClock, log });
  const buses: ProcessBus[] = [];
  const members: Recorder[][] = [];
  try {
    for (let group = 0; group < 3; group++) {
      const bus = await ProcessBus.connect({
        path: hub.path,
        node: "n1",
        endpoint: `n1/${group}`,
        log,
      });
      buses.push(bus);
      const stages = [new Recorder("calc", bus.endpoint), new Recorder("start", bus.endpoint)];
      for (const stage of stages) bus.join(stage);
      bus.ready();
      members.push(stages);
    }
    await until(
      "membership",
      () => buses.every((bus) => bus.peers.filter((p) => p.stages.length === 2).length === 3),
    );
    await run(buses, members, hub);
  } finally {
    for (const bus of buses) await bus[Symbol.asyncDispose]();
  }
}

Deno.test("ProcessBus: round robin across processes, skipping an overloaded one; * reaches all", async () => {
  await withBus(async (buses, members) => {
    for (let i = 0; i < 300; i++) buses[0]!.route(message({ stage: "calc" }, i));
    const counts = await Promise.all(members.map(async ([calc]) => {
      await until(
        "deliveries",
        () => members.reduce((n, [c]) => n + c!.received.length, 0) === 300,
      );
      return calc!.received.length;
    }));
    assert.deepEqual(counts, [100, 100, 100], "instances take turns, this process included");
    assert.equal(members[1]![0]!.received[0]!.header.from.at, "n1/0", "stamped with its origin");

    buses[2]!.detached = true;
    await until("overloaded state", () => buses[0]!.peers.some((p) => p.state === "overloaded"));
    for (let i = 0; i < 100; i++) buses[0]!.route(message({ stage: "calc" }, i));
    await members[0]![0]!.count(150);
    await members[1]![0]!.count(150);
    assert.equal(members[2]![0]!.received.length, 100, "the overloaded process got no routed work");

    buses[1]!.route(message({ stage: "start", scope: "all" }, "hello all"));
    for (const [, start] of members) {
      const [got] = await start!.count(1);
      assert.deepEqual(got!.values, ["hello all"]);
    }
  });
});

Deno.test("ProcessBus: a reply finds the process that asked; undeliverable messages are answered", async () => {
  await withBus(async (buses, members) => {
    // A request from "start" on n1/0, sent to "calc" on whichever instance comes next.
    buses[0]!.route(message({ stage: "calc" }, "skip this one")); // n1/0 takes the first turn
    buses[0]!.route(message(
      {
        stage: "calc",
        message: "ask",
        reply: { stage: "start", worker: 3, id: "~answer" },
      },
      2,
      3,
    ));
    const [asked] = await members[1]![0]!.count(1);
    assert.deepEqual(asked!.header.reply, { stage: "start", worker: 3, id: "~answer", at: "n1/0" });
    // The receiver answers through its own bus, as Messaging does.
    const answer = replyHeader(asked!.header.reply!, { stage: "calc", worker: 0 });
    buses[1]!.route(encodeSignal(answer, packValues([5]).bytes));
    const [got] = await members[0]![1]!.count(1);
    assert.equal(got!.header.message, "~answer");
    assert.equal(got!.header.worker, 3);
    assert.deepEqual(got!.values, [5]);

    // No instance anywhere: the sender hears at once.
    buses[0]!.route(message({
      stage: "nowhere",
      reply: { stage: "start", worker: 0, id: "~err" },
    }));
    const [, error] = await members[0]![1]!.count(2);
    assert.equal(error!.header.error, true);
    assert.equal((error!.values[0] as { name: string }).name, "StageNotFoundError");
    // "+" reaches other machines only: there are none.
    buses[0]!.route(message({
      stage: "calc",
      scope: "remote",
      reply: { stage: "start", worker: 0, id: "~err2" },
    }));
    const [, , remote] = await members[0]![1]!.count(3);
    assert.match((remote!.values[0] as { message: string }).message, /other servers/);
  });
});

Deno.test("ProcessBus: a process that left is routed around; the hub answers for it", async () => {
  await withBus(async (buses, members, hub) => {
    // A request already with n1/2 when it goes: the asker hears at once, not at its timeout.
    buses[0]!.route(message({
      stage: "calc",
      worker: 0,
      to: "n1/2",
      message: "slow",
      reply: { stage: "start", worker: 2, id: "~pending" },
    }));
    await members[2]![0]!.count(1);
    await buses[2]![Symbol.asyncDispose]();
    const [lost] = await members[0]![1]!.count(1);
    assert.equal(lost!.header.message, "~pending");
    assert.equal((lost!.values[0] as { name: string }).name, "WorkerTerminatedError");
    members[0]![1]!.received.length = 0;
    await until("departure", () => hub.members.length === 2 && buses[0]!.peers.length === 2);
    for (let i = 0; i < 10; i++) buses[0]!.route(message({ stage: "calc" }, i));
    await members[0]![0]!.count(5);
    await members[1]![0]!.count(5);
    // An answer for the process that left goes nowhere; a request to it is answered by the hub.
    buses[0]!.route(message({
      stage: "calc",
      worker: 0,
      to: "n1/2",
      reply: { stage: "start", worker: 1, id: "~late" },
    }));
    const [got] = await members[0]![1]!.count(1);
    assert.equal(got!.header.error, true);
    assert.match((got!.values[0] as { message: string }).message, /n1\/2.*gone/);
  });
});

Deno.test("ProcessBus: ordering locks are machine-wide (kept by the hub)", async () => {
  await withBus(async (buses, members) => {
    const lock = (bus: ProcessBus, op: "acquire" | "release", callback: string) =>
      bus.route(message({
        stage: "start",
        message: callback,
        from: { stage: "start", worker: 0 },
        lock: { op, name: "L", callback },
      }, "v"));
    lock(buses[1]!, "acquire", "first");
    await members[1]![1]!.count(1);
    lock(buses[2]!, "acquire", "second");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(members[2]![1]!.received.length, 0, "the second process waits its turn");
    lock(buses[1]!, "release", "*");
    const [granted] = await members[2]![1]!.count(1);
    assert.equal(granted!.header.message, "second");
    assert.deepEqual(granted!.values, ["v"]);
    lock(buses[2]!, "release", "*");
  });
});

Deno.test("BusHub listens on an owner-only socket in an owner-only folder", async () => {
  await using hub = await BusHub.start({ clock: systemClock, log });
  const folder = hub.path.slice(0, hub.path.lastIndexOf("/"));
  assert.equal((await Deno.stat(folder)).mode! & 0o777, 0o700);
  assert.equal((await Deno.lstat(hub.path)).mode! & 0o777, 0o600);
  await hub.close();
  await assert.rejects(Deno.stat(folder), Deno.errors.NotFound, "closing removes it");
});

Deno.test("BusHub: a message its sender routed to a process that is gone goes to another instance", async () => {
  await withBus(async (_buses, members, hub) => {
    // A stale sender: it still believes n1/9 serves "calc".
    const conn = await connectBus(hub.path);
    const link = framedConnection(conn, () => {});
    link.send(encodeControl(BusFrame.Hello, {
      endpoint: "n1/8",
      node: "n1",
      stages: [],
      state: "ready",
    }));
    link.send(encodeMessage(BusFrame.Send, message({ stage: "calc" }, "rerouted"), "n1/9"));
    const deliveries = () => members.flatMap(([calc]) => calc!.received);
    await until("the rerouted message", () => deliveries().length === 1);
    assert.deepEqual(deliveries()[0]!.values, ["rerouted"]);
    link.close();
    await link.closed;
  });
});
