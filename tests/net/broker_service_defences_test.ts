/**
 * BrokerService's defences against abnormal sockets, over real loopback TCP with
 * an in-memory worker sink that echoes frames: the frame deadline (slowloris),
 * connection limits in total and per IP, and no per-socket state left behind
 * after connection churn.
 */
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import type { Logger } from "@logtape/logtape";
import {
  type BrokerLimits,
  BrokerService,
  type SocketHomes,
  type WorkerSink,
} from "../../core/net/broker_service.ts";
import { denoTransport } from "../../core/net/transport.ts";
import { type MainControl, ToMain, ToWorker } from "../../core/pool/wire.ts";
import { type Clock, systemClock } from "../../core/time/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const URL = "tcp://127.0.0.1:0?raw";

/** A worker pool stand-in: echoes every frame back through the broker, counts the rest. */
class EchoWorkers implements WorkerSink {
  service: BrokerService | undefined;
  opened = 0;
  closed = 0;
  frames = 0;

  send(_worker: number, tag: number, a: number, _b: number, body?: Uint8Array, body2?: Uint8Array) {
    switch (tag & 0xff) {
      case ToWorker.Open:
        this.opened++;
        break;
      case ToWorker.Closed:
        this.closed++;
        break;
      case ToWorker.Frame: {
        this.frames++;
        // The views are valid only during the call.
        const frame = new Uint8Array([...body ?? [], ...body2 ?? []]);
        queueMicrotask(() => {
          this.service?.record(ToMain.Commit, a, 0, frame);
          this.service?.flush();
        });
        break;
      }
    }
  }

  post(_worker: number, _message: MainControl): void {}
}

/** Socket homes on a single worker. */
class OneWorkerHomes implements SocketHomes {
  readonly #bound = new Set<number>();

  bind(id: number): number {
    this.#bound.add(id);
    return 0;
  }

  workerOf(id: number): number | undefined {
    return this.#bound.has(id) ? 0 : undefined;
  }

  unbind(id: number): void {
    this.#bound.delete(id);
  }

  /** Sockets bound. */
  get size(): number {
    return this.#bound.size;
  }
}

/** A logger that keeps its warnings (message template and properties). */
function capturingLogger(): { log: Logger; warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const log: Logger = new Proxy({} as Logger, {
    get: (_target, name) => {
      if (name === "warning" || name === "warn") {
        return (message: string, properties: Record<string, unknown> = {}) =>
          warnings.push({ message, ...properties });
      }
      if (name === "getChild" || name === "with") return () => log;
      return () => {};
    },
  });
  return { log, warnings };
}

interface Service extends AsyncDisposable {
  service: BrokerService;
  workers: EchoWorkers;
  scheduler: OneWorkerHomes;
  port: number;
  warnings: Record<string, unknown>[];
}

function startService(limits: Partial<BrokerLimits>, clock: Clock = systemClock): Service {
  const workers = new EchoWorkers();
  const scheduler = new OneWorkerHomes();
  const { log, warnings } = capturingLogger();
  const service = new BrokerService({
    stageId: "test",
    transport: denoTransport,
    workers,
    scheduler,
    clock,
    log,
    limits,
  });
  workers.service = service;
  service.listen(0, URL);
  service.startAccepting();
  const port = Number(service.listeners().get(URL)!.split(":").pop());
  return {
    service,
    workers,
    scheduler,
    port,
    warnings,
    [Symbol.asyncDispose]: async () => {
      await service.close(0);
      await new Promise((resolve) => setTimeout(resolve, 10)); // let the read loops see EOF
    },
  };
}

/** Polls `condition` every 5 ms; fails after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Resolves with the number of bytes the server sent before EOF (rejects after `timeoutMs`). */
async function readToEof(conn: Deno.Conn, timeoutMs = 5000): Promise<number> {
  const buffer = new Uint8Array(1024);
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no EOF within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    for (;;) {
      const count = await Promise.race([conn.read(buffer), timeout]);
      if (count === null) return total;
      total += count;
    }
  } finally {
    clearTimeout(timer);
  }
}

function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

function assertNothingLeft(service: Service): void {
  assert.deepEqual(service.service.registrySizes(), {
    connections: 0,
    dirty: 0,
    inbound: 0,
    perIp: 0,
  });
  assert.equal(service.scheduler.size, 0, "no socket left bound to a worker");
}

Deno.test("BrokerService closes 500 slowloris connections at the frame deadline while serving a good client", async () => {
  await using fixture = startService({ frameDeadlineMs: 300 });
  const { service, port } = fixture;
  await using good = await FrameClient.connect(port, "raw");
  const slow = await Promise.all(Array.from({ length: 500 }, () => connect(port)));
  try {
    const started = performance.now();
    await Promise.all(slow.map((conn) => conn.write(new Uint8Array([100, 0]))));
    // The good client keeps getting its replies while the slow ones wait to be cut off.
    let round = 0;
    while (performance.now() - started < 600) {
      const elapsed = performance.now() - started;
      if (elapsed < 250) assert.equal(service.closedByReason.get("frame_deadline"), undefined);
      await good.send(new Uint8Array([round & 0xff, 1, 2]));
      assert.deepEqual(await good.next(2000), new Uint8Array([round & 0xff, 1, 2]));
      round++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(round >= 10, `only ${round} round trips in 600 ms`);
    const eofs = await Promise.all(slow.map((conn) => readToEof(conn)));
    assert.ok(eofs.every((bytes) => bytes === 0), "the slow clients get nothing but EOF");
    await until(() => service.closedByReason.get("frame_deadline") === 500, "500 deadline closes");
    assert.equal(good.ended, false, "the good client stays connected");
    await good.send(new Uint8Array([42]));
    assert.deepEqual(await good.next(), new Uint8Array([42]));
    assert.equal(service.socketCount, 1);
    assert.ok(
      fixture.warnings.filter((w) => w["reason"] === "frame_deadline").length <= 3,
      "deadline warnings are rate limited",
    );
  } finally {
    for (const conn of slow) conn.close();
  }
});

Deno.test("BrokerService closes the 6th connection from one IP at once with maxPerIp 5, and accepts after a close", async () => {
  const clock = new ManualClock();
  await using fixture = startService({ maxPerIp: 5 }, clock);
  const { service, port } = fixture;
  const clients = await Promise.all(Array.from({ length: 5 }, () => connect(port)));
  try {
    await until(() => fixture.workers.opened === 5, "5 opened sockets");
    const extra = await connect(port);
    assert.equal(await readToEof(extra), 0, "the refused client sees EOF");
    extra.close();
    assert.deepEqual([...service.refusedByReason], [["max_per_ip", 1]]);
    assert.equal(fixture.workers.opened, 5, "no worker heard of the refused connection");
    assert.equal(service.socketCount, 5);

    clients.shift()!.close();
    await until(() => service.socketCount === 4, "the closed socket to go");
    assert.equal(service.registrySizes().perIp, 1);
    const late = await FrameClient.connect(port, "raw");
    try {
      await late.send(new Uint8Array([7]));
      assert.deepEqual(await late.next(), new Uint8Array([7]));
    } finally {
      await late[Symbol.asyncDispose]();
    }
    assert.equal(service.refusedByReason.get("max_per_ip"), 1);
  } finally {
    for (const conn of clients) conn.close();
  }
  await until(() => service.socketCount === 0, "every socket to close");
  assertNothingLeft(fixture);
});

Deno.test("BrokerService closes connections over maxConnections at once, and accepts after a close", async () => {
  const clock = new ManualClock();
  await using fixture = startService({ maxConnections: 5, maxPerIp: 100 }, clock);
  const { service, port } = fixture;
  const clients = await Promise.all(Array.from({ length: 5 }, () => connect(port)));
  try {
    await until(() => service.socketCount === 5, "5 open sockets");
    const refused = await Promise.all(Array.from({ length: 3 }, () => connect(port)));
    for (const conn of refused) {
      assert.equal(await readToEof(conn), 0);
      conn.close();
    }
    assert.deepEqual([...service.refusedByReason], [["max_connections", 3]]);
    // At most one warning per second per reason, with the count held back.
    const warned = () => fixture.warnings.filter((w) => w["reason"] === "max_connections");
    assert.equal(warned().length, 1);
    assert.equal(warned()[0]!["suppressed"], 0);
    clock.advance(1000);
    const fourth = await connect(port);
    assert.equal(await readToEof(fourth), 0);
    fourth.close();
    assert.equal(warned().length, 2);
    assert.equal(warned()[1]!["suppressed"], 2);

    clients.pop()!.close();
    await until(() => service.socketCount === 4, "the closed socket to go");
    const late = await FrameClient.connect(port, "raw");
    try {
      await late.send(new Uint8Array([8]));
      assert.deepEqual(await late.next(), new Uint8Array([8]));
    } finally {
      await late[Symbol.asyncDispose]();
    }
    assert.equal(service.refusedByReason.get("max_connections"), 4);
  } finally {
    for (const conn of clients) conn.close();
  }
  await until(() => service.socketCount === 0, "every socket to close");
  assertNothingLeft(fixture);
});

/** V8's collector, when this runtime lets a test reach it. */
function exposeGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? gc as () => void : undefined;
  } catch {
    return undefined;
  }
}

function heapUsed(gc: (() => void) | undefined): number {
  gc?.();
  return Deno.memoryUsage().heapUsed;
}

Deno.test("BrokerService leaves no per-socket state behind after 100,000 connect/disconnect cycles", async () => {
  const CYCLES = 100_000;
  const LOOPS = 50;
  // A long deadline: every other client leaves a partial frame behind, so a
  // deadline timer not cancelled on close would outlive the test (and fail it).
  await using fixture = startService({ frameDeadlineMs: 60_000 });
  const { service, port } = fixture;
  const gc = exposeGc();
  let next = 0;
  let baseline = 0;
  const cycle = async () => {
    for (let n = next++; n < CYCLES; n = next++) {
      if (n === 10_000) baseline = heapUsed(gc); // after warm-up
      const conn = await connect(port);
      if (n % 2 === 0) await conn.write(new Uint8Array([64, 0]));
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, cycle));
  await until(() => service.socketCount === 0, "every socket to close", 30_000);
  const closed = [...service.closedByReason.values()].reduce((sum, count) => sum + count, 0);
  assert.equal(closed, CYCLES, JSON.stringify([...service.closedByReason]));
  assert.equal(fixture.workers.opened, CYCLES);
  await until(() => fixture.workers.closed === CYCLES, "every Closed record");
  assertNothingLeft(fixture);
  assert.equal(service.refusedByReason.size, 0);
  const growth = heapUsed(gc) - baseline;
  // With a collector: a leak of ~80 bytes per socket would show; without one, garbage
  // may be counted, and the bound only catches leaked connections (64 KiB buffers each).
  const bound = gc === undefined ? 64 * 1024 * 1024 : 8 * 1024 * 1024;
  assert.ok(growth < bound, `heap grew by ${growth} bytes over ${CYCLES - 10_000} cycles`);
});
