/**
 * ServiceStage with an in-memory bus: a service handles messages in arrival
 * order over the script message interface, answers reply addresses, survives
 * its own errors, and refuses messages once stopped.
 */
import assert from "node:assert/strict";
import { coreLogger } from "../../core/log/mod.ts";
import { isShippedFunction, packValues, shipFunction, unpackData } from "../../core/message/mod.ts";
import { MetricsRegistry } from "../../core/metrics/mod.ts";
import { decodeSignalHeader, encodeSignal, type SignalHeader } from "../../core/pool/wire.ts";
import { type ServiceFactory, ServiceStage } from "../../core/services/mod.ts";
import type { StageConfig } from "../../core/config/mod.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

interface Sent {
  header: SignalHeader;
  values: unknown[];
}

function harness(start: ServiceFactory) {
  const sent: Sent[] = [];
  const bus = {
    route(body: Uint8Array) {
      const { header, values } = decodeSignalHeader(body);
      if (header.stage === service.id) service.deliver(header, body);
      else sent.push({ header, values: unpackData(values) }); // as data: never rebuilt here
    },
  };
  const service: ServiceStage = new ServiceStage({
    id: "svc",
    kind: "agent",
    bus,
    clock: new ManualClock(),
    log: coreLogger("test"),
    metrics: new MetricsRegistry(),
    config: {} as StageConfig,
    start,
  });
  const send = (message: string, values: unknown[], reply?: string) => {
    const header: SignalHeader = {
      stage: "svc",
      scope: "one",
      message,
      from: { stage: "client", worker: 1 },
      ...(reply === undefined ? {} : { reply: { stage: "client", worker: 1, id: reply } }),
    };
    bus.route(encodeSignal(header, packValues(values).bytes));
  };
  return { service, sent, send };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** Waits (bounded) until the service handled everything queued. */
async function drained(service: ServiceStage): Promise<void> {
  for (let i = 0; i < 500 && service.queued > 0; i++) await settle();
  await settle();
}

Deno.test("ServiceStage handles messages after the current task, in order, and answers reply addresses", async () => {
  const seen: number[] = [];
  const { service, sent, send } = harness(({ api }) => {
    api.waitfor("add", (a: unknown, b: unknown) => {
      seen.push(a as number);
      return (a as number) + (b as number);
    });
    api.waitfor("fail", () => {
      throw new RangeError("no such thing");
    });
    api.waitfor("who", () => ({ from: api.context?.from, query: api.context?.query }));
    return { stop() {} };
  });
  await service.start();
  for (let i = 0; i < 1200; i++) send("add", [i, 1], i === 1199 ? "last" : undefined);
  assert.equal(seen.length, 0, "nothing runs inside the sender's call");
  assert.ok(service.queued > 0);
  await drained(service);
  assert.deepEqual(
    seen,
    Array.from({ length: 1200 }, (_, i) => i),
    "in arrival order, all of them",
  );
  assert.deepEqual(sent.map((s) => [s.header.message, s.header.worker, s.values]), [
    ["last", 1, [1200]],
  ]);
  send("fail", [], "oops");
  send("add", [1, 1], "after");
  await settle();
  assert.equal(sent[1]!.header.error, true, "a thrown error goes back as an error record");
  assert.equal((sent[1]!.values[0] as { name: string }).name, "RangeError");
  assert.deepEqual(sent[2]!.values, [2], "the service keeps working after an error");
  await service.stop();
});

Deno.test("ServiceStage.stop stops the service and refuses later messages", async () => {
  let stopped = 0;
  let handled = 0;
  const { service, send } = harness(({ api }) => {
    api.waitfor("*", () => {
      handled++;
    });
    return { stop: () => void stopped++ };
  });
  await service.start();
  send("anything", []);
  await service.stop();
  assert.equal(handled, 1, "what was queued before stop is handled");
  send("late", []);
  await settle();
  assert.equal(handled, 1);
  assert.equal(stopped, 1);
  await service.stop();
  assert.equal(stopped, 1, "stop runs once");
});

Deno.test("ServiceStage never evaluates a function a script sent; it travels on as a record", async () => {
  const { service, sent, send } = harness(({ api }) => {
    api.waitfor("echo", (value: unknown) => value);
    return { stop() {} };
  });
  await service.start();
  // A hand-made record whose "source" would run code on the main thread if it were rebuilt.
  const shipped = shipFunction(() => 1);
  const key = Object.keys(shipped).find((k) => k !== "name")!;
  const crafted = { ...shipped, [key]: "(globalThis.__stageServiceEval = true, () => 1)" };
  send("echo", [crafted], "back");
  await drained(service);
  assert.equal((globalThis as { __stageServiceEval?: boolean }).__stageServiceEval, undefined);
  // The reply carries the record as it came, to be rebuilt (in a worker) where it is used.
  const { header, values } = sent[0]!;
  assert.equal(header.message, "back");
  assert.ok(isShippedFunction(values[0]));
  assert.deepEqual(values[0], crafted);
  await service.stop();
});
