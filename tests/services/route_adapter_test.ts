/**
 * The route service's message adapter against a fake message interface and a
 * ManualClock: expiry through messages, probe outcomes, timers on stop.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type { Address, DeliveryOptions, MessageContext } from "../../core/api/messaging.ts";
import {
  RequestTimeoutError,
  StageNotFoundError,
  WaitforNotFoundError,
} from "../../core/api/messaging.ts";
import type { StageConfig } from "../../core/config/mod.ts";
import { MetricsRegistry } from "../../core/metrics/mod.ts";
import { routeService } from "../../core/services/route_service.ts";
import type { Service, ServiceApi } from "../../core/services/service_stage.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

type Handler = (...values: unknown[]) => unknown;
interface Sent {
  to: Address;
  values: unknown[];
  options: DeliveryOptions | undefined;
}
interface Probe {
  to: Address;
  values: unknown[];
  timeoutMs: number | undefined;
}

/** A route service on a fake `api`: `send` plays a message to it, `sent` records what it sent. */
async function fakeRoute(options: { expiryMs?: number; probeTimeoutMs?: number } = {}) {
  const clock = new ManualClock();
  const metrics = new MetricsRegistry();
  const handlers = new Map<string, Handler>();
  const sent: Sent[] = [];
  const probes: Probe[] = [];
  let context: MessageContext | undefined;
  /** What a subscriber answers when asked (by its stage id). */
  const answers = new Map<string, () => Promise<unknown>>();
  const api = {
    id: "route",
    waitfor: (id: string, fn: Handler) => handlers.set(id, fn),
    get context() {
      return context;
    },
    deliverTo: (to: Address, values: unknown[], options?: DeliveryOptions) =>
      sent.push({ to, values, options }),
    requestTo: (to: Address, values: unknown[], timeoutMs?: number) => {
      probes.push({ to, values, timeoutMs });
      return answers.get(to.stage)?.() ?? Promise.resolve(true);
    },
  } as unknown as ServiceApi;
  const service: Service = await routeService(options)({
    api,
    clock,
    log: getLogger(["stage", "test", "route"]),
    metrics,
    config: {} as StageConfig,
  });
  /** Delivers `values` to the route stage as message `message` from `from`. */
  const send = async (
    message: string,
    values: unknown[],
    from = { stage: "client", worker: 0 },
    extra: Partial<MessageContext> = {},
  ) => {
    context = { waitfor: message, message, from, ...extra };
    const handler = handlers.get(message) ?? handlers.get("*")!;
    try {
      return await handler(...values);
    } finally {
      context = undefined;
    }
  };
  const subscriber = (stage: string) => ({ stage, worker: 1 });
  return { clock, sent, probes, answers, send, subscriber, service };
}

const sender = { stage: "client", worker: 0 };
const fail = { fail: "back" };

Deno.test("route service: a subscription expires 30 s after its last renewal", async () => {
  const { clock, sent, send, subscriber, service } = await fakeRoute();
  await send("@", [{ job: "on_job" }], subscriber("a"));
  clock.advance(29_000);
  assert.equal(await send("@", [true], subscriber("a")), true);
  clock.advance(29_000);
  await send("job", [1], sender, fail);
  assert.deepEqual(sent.pop()?.to, { stage: "a", worker: 1, id: "on_job" }, "renewed: delivered");
  clock.advance(30_000);
  await send("job", [2], sender, fail);
  assert.deepEqual(sent.pop(), {
    to: { stage: "client", worker: 0, id: "back" },
    values: [2],
    options: {},
  }, "expired: the values went back to !fail");
  assert.equal(await send("@", [true], subscriber("a")), false, "nothing left to renew");
  await service.stop();
  assert.equal(clock.pending, 0, "stop cancels the sweep timer");
});

Deno.test("route service: the expiry is an option", async () => {
  const { clock, sent, send, subscriber, service } = await fakeRoute({ expiryMs: 100 });
  await send("@", [{ job: "on_job" }], subscriber("a"));
  clock.advance(100);
  await send("job", [1], sender, fail);
  assert.equal(sent.pop()?.to.id, "back");
  await service.stop();
});

Deno.test("route service: probes carry the id and argument to route:@, with the probe timeout", async () => {
  const { probes, sent, send, subscriber, service } = await fakeRoute({ probeTimeoutMs: 250 });
  await send("@", [{ job: "on_job" }], subscriber("a"));
  const reply = { stage: "client", worker: 0, id: "cb" };
  await send("job", ["v"], sender, { query: "arg", reply });
  assert.deepEqual(probes, [{
    to: { stage: "a", worker: 1, id: "route:@" },
    values: ["job", "arg"],
    timeoutMs: 250,
  }]);
  assert.deepEqual(sent, [{
    to: { stage: "a", worker: 1, id: "on_job" },
    values: ["v"],
    options: { from: sender, reply, query: "arg" },
  }], "delivered on behalf of the sender, with its reply address and argument");
  await service.stop();
});

Deno.test("route service: a timed-out probe declines; a subscriber without route:@ is asked once", async () => {
  const { answers, probes, sent, send, subscriber, service } = await fakeRoute();
  await send("@", [{ job: "on_job" }], subscriber("slow"));
  answers.set("slow", () => Promise.reject(new RequestTimeoutError("no answer")));
  const reply = { stage: "client", worker: 0, id: "cb" };
  await send("job", [1], sender, { reply });
  const error = sent.pop()!;
  assert.deepEqual(error.to, reply);
  assert.equal(error.options?.error, true);
  assert.equal((error.values[0] as { name: string }).name, "RouteUnavailableError");

  await send("@", [{ job: "on_job" }], subscriber("plain"));
  answers.set("plain", () => Promise.reject(new WaitforNotFoundError("no route:@")));
  probes.length = 0;
  for (let i = 0; i < 3; i++) await send("job", [i], sender, fail);
  assert.deepEqual(sent.splice(0).map((s) => s.to.stage), ["plain", "plain", "plain"]);
  assert.equal(probes.filter((p) => p.to.stage === "plain").length, 1, "asked only once");
  await service.stop();
});

Deno.test("route service: a subscriber whose stage is gone is dropped", async () => {
  const { answers, send, sent, subscriber, service } = await fakeRoute();
  await send("@", [{ job: "on_job" }], subscriber("gone"));
  answers.set("gone", () => Promise.reject(new StageNotFoundError("no stage")));
  await send("job", [1], sender, fail);
  assert.equal(sent.pop()?.to.id, "back");
  assert.equal(
    await send("@", [true], subscriber("gone")),
    false,
    "its subscriptions were dropped",
  );
  await service.stop();
});

Deno.test("route service: a late probe answer and a bad id are not routed", async () => {
  const { send, sent, service } = await fakeRoute();
  await send("~route.0.7", [true]);
  assert.equal(sent.length, 0, "a late answer is dropped silently");
  const reply = { stage: "client", worker: 0, id: "cb" };
  await send("*", [1], sender, { reply });
  assert.equal((sent.pop()?.values[0] as { name: string }).name, "TypeError");
  await service.stop();
});
