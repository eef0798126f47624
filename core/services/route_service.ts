/**
 * The route service stage (DESIGN.md §5): subscription routing over the script
 * message interface.
 *
 * A subscriber (one worker of a stage) sends `route:@` messages: an object
 * `{ subscribe_id: "callback_id" | null }` subscribes/unsubscribes, `true`
 * renews and resumes, `false` pauses, a number pauses for that many ms, `null`
 * unsubscribes from everything. A message `route:id?argument=return_cb!fail_cb`
 * is offered to the live, unpaused subscribers of `id` (each is asked through
 * its `route:@` waitfor) and delivered to one willing subscriber, round robin
 * (`route:*id`: to every willing one). The receiver's reply goes to the
 * original sender; values nobody took go back to `fail_cb`.
 *
 * @module
 */
import { type MessageContext, RequestTimeoutError } from "../api/messaging.ts";
import { registerErrorClass, toErrorRecord } from "../message/mod.ts";
import {
  type Candidate,
  RouteTable,
  subscriberAddress,
  type SubscriberRef,
} from "./route_table.ts";
import type { ServiceFactory } from "./service_stage.ts";

/** Raised (at the sender) when nobody takes a routed message and it has no `!fail` callback. */
export class RouteUnavailableError extends Error {
  override name = "RouteUnavailableError";
}

// Errors cross threads as records; this one comes back as its own class.
registerErrorClass("RouteUnavailableError", RouteUnavailableError);

/** How long the route stage waits for subscribers to say whether they take a message (ms). */
export const PROBE_TIMEOUT_MS = 1000;

/** Options of {@link routeService} (tests shorten the times). */
export interface RouteServiceOptions {
  /** Subscriptions expire this long after the last subscribe or renew (default 30 s). */
  expiryMs?: number;
  /** How long a delivery waits for the subscribers' answers (default {@link PROBE_TIMEOUT_MS}). */
  probeTimeoutMs?: number;
}

/** What one message to the route stage asks for. */
type Request =
  | { verb: "subscribe"; from: SubscriberRef; changes: Record<string, string | null> }
  | { verb: "renew"; from: SubscriberRef }
  | { verb: "pause"; from: SubscriberRef; ms: number }
  | { verb: "leave"; from: SubscriberRef }
  | { verb: "route"; id: string; values: unknown[]; context: MessageContext }
  | { verb: "broadcast"; id: string; values: unknown[]; context: MessageContext };

type Verbs = { [V in Request["verb"]]: (request: Extract<Request, { verb: V }>) => unknown };

/** Subscribe and callback ids: no whitespace, no target modifiers; `@ * ~` are reserved first characters. */
const SUBSCRIBE_ID = /^[^\s=?!@*~][^\s=?!]*$/;
const CALLBACK_ID = /^[^\s]+$/;

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value !== "object" || value === null) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Reads a `route:@` value into a request. */
function parseControl(from: SubscriberRef, value: unknown): Request | Error {
  if (value === true) return { verb: "renew", from };
  if (value === false) return { verb: "pause", from, ms: Infinity };
  if (value === null) return { verb: "leave", from };
  if (typeof value === "number") {
    if (Number.isFinite(value) && value >= 0) return { verb: "pause", from, ms: value };
    return new RangeError(`route:@: a pause must be a non-negative number of ms; got ${value}`);
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    return new TypeError(
      `route:@: expected { subscribe_id: "callback_id" | null }, true, false, ms or null; got ${
        describe(value)
      }`,
    );
  }
  const changes: Record<string, string | null> = {};
  for (const [id, callback] of Object.entries(value as Record<string, unknown>)) {
    if (!SUBSCRIBE_ID.test(id)) {
      return new TypeError(`route:@: invalid subscribe id ${JSON.stringify(id)}`);
    }
    if (callback !== null && (typeof callback !== "string" || !CALLBACK_ID.test(callback))) {
      return new TypeError(
        `route:@: subscribe id "${id}" needs a callback waitfor id or null; got ${
          describe(callback)
        }`,
      );
    }
    changes[id] = callback;
  }
  return { verb: "subscribe", from, changes };
}

/** Builds the route service with `options` (the `=route` kind uses the defaults). */
export function routeService(options: RouteServiceOptions = {}): ServiceFactory {
  const probeTimeoutMs = options.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
  return ({ api, clock, log, metrics }) => {
    const table = new RouteTable(
      clock,
      options.expiryMs === undefined ? {} : { expiryMs: options.expiryMs },
    );
    const routed = metrics.counter(
      "stage_route_messages_total",
      "Messages routed by a route stage, by outcome (delivered, broadcast, unavailable).",
      ["stage", "outcome"],
    );
    const subscribers = metrics.gaugeFn(
      "stage_route_subscribers",
      "Subscribers (stage workers) with live subscriptions.",
      () => [{ labels: { stage: api.id }, value: table.size }],
    );
    const probeId = `${api.id}:@`;
    let stopped = false;

    /** Asks one candidate whether it takes a message of `id`; resolves with its willingness. */
    async function ask(candidate: Candidate, id: string, argument: string | undefined) {
      if (!candidate.probe) return true;
      const { subscriber } = candidate;
      let answer: unknown;
      try {
        answer = await api.requestTo(
          subscriberAddress(subscriber, probeId),
          [id, argument],
          probeTimeoutMs,
        );
      } catch (error) {
        const name = (error as Error | undefined)?.name;
        if (name === "WaitforNotFoundError") {
          // It takes whatever comes: do not ask (and fill its log with warnings) again.
          table.noProbe(subscriber);
          return true;
        }
        if (error instanceof RequestTimeoutError) {
          log.debug("Route {stage}: subscriber {key} did not answer for {id} in time", {
            stage: api.id,
            key: candidate.key,
            id,
          });
        } else if (name === "StageNotFoundError") {
          log.info("Route {stage}: subscriber {key} is gone; its subscriptions are dropped", {
            stage: api.id,
            key: candidate.key,
          });
          table.remove(subscriber);
        } else {
          log.warning("Route {stage}: asking subscriber {key} about {id} failed: {error}", {
            stage: api.id,
            key: candidate.key,
            id,
            error,
          });
        }
        return false;
      }
      if (answer === true) return true;
      if (answer === false) return false;
      if (answer === null) {
        table.unsubscribe(subscriber, id);
      } else if (typeof answer === "number" && Number.isFinite(answer) && answer >= 0) {
        table.pause(subscriber, answer);
      } else {
        log.warning("Route {stage}: subscriber {key} answered {answer} for {id}; taken as no", {
          stage: api.id,
          key: candidate.key,
          answer: describe(answer),
          id,
        });
      }
      return false;
    }

    /** The candidates of `id` that take this message, still subscribed after the asking. */
    async function willing(id: string, context: MessageContext): Promise<Candidate[]> {
      const candidates = table.candidates(id);
      const answers = await Promise.all(candidates.map((c) => ask(c, id, context.query)));
      // Meanwhile a subscriber may have paused, left or changed its callback.
      const now = new Map(table.candidates(id).map((c) => [c.key, c]));
      return candidates.flatMap((c, i) => {
        const current = now.get(c.key);
        return answers[i] && current !== undefined ? [current] : [];
      });
    }

    function handOver(candidate: Candidate, values: unknown[], context: MessageContext): void {
      api.deliverTo(
        subscriberAddress(candidate.subscriber, candidate.callback),
        values,
        {
          from: context.from,
          ...(context.reply === undefined ? {} : { reply: context.reply }),
          ...(context.query === undefined ? {} : { query: context.query }),
        },
      );
    }

    /** Nobody took it: back to the sender's `!fail`, else an error to its reply address. */
    function unavailable(id: string, values: unknown[], context: MessageContext): void {
      routed.inc({ stage: api.id, outcome: "unavailable" });
      const { from, fail, reply, query } = context;
      if (fail !== undefined) {
        api.deliverTo(
          subscriberAddress(from, fail),
          values,
          query === undefined ? {} : { query },
        );
        return;
      }
      const why = `no subscriber of "${id}" on route stage "${api.id}" took the message`;
      if (reply !== undefined) {
        api.deliverTo(reply, [toErrorRecord(new RouteUnavailableError(why))], { error: true });
        return;
      }
      log.warning("Route {stage}: {why} (from {from}); dropped", {
        stage: api.id,
        why,
        from: `${from.stage}/${from.worker}`,
      });
    }

    const verbs = {
      subscribe: ({ from, changes }) => {
        table.subscribe(from, changes);
        return true;
      },
      renew: ({ from }) => table.renew(from),
      pause: ({ from, ms }) => table.pause(from, ms),
      leave: ({ from }) => table.remove(from),
      route: async ({ id, values, context }) => {
        const found = await willing(id, context);
        if (stopped) return;
        const key = table.choose(id, new Set(found.map((c) => c.key)));
        const chosen = found.find((c) => c.key === key);
        if (chosen === undefined) return unavailable(id, values, context);
        routed.inc({ stage: api.id, outcome: "delivered" });
        handOver(chosen, values, context);
      },
      broadcast: async ({ id, values, context }) => {
        const found = await willing(id, context);
        if (stopped) return;
        if (found.length === 0) return unavailable(`*${id}`, values, context);
        routed.inc({ stage: api.id, outcome: "broadcast" }, found.length);
        for (const candidate of found) handOver(candidate, values, context);
      },
    } satisfies Verbs;

    function run<R extends Request>(request: R): unknown {
      return (verbs[request.verb] as (request: R) => unknown)(request);
    }

    /** A bad request: a warning here and, if the sender awaits a reply, the error there. */
    function refuse(error: Error, context: MessageContext): void {
      log.warning("Route {stage}: {text} (from {from})", {
        stage: api.id,
        text: error.message,
        from: `${context.from.stage}/${context.from.worker}`,
      });
      if (context.reply !== undefined) {
        api.deliverTo(context.reply, [toErrorRecord(error)], { error: true });
      }
    }

    api.waitfor("@", (value: unknown) => {
      const context = api.context!;
      const request = parseControl(context.from, value);
      if (request instanceof Error) return refuse(request, context);
      return run(request);
    });

    // Every other message id is a subscribe id (`*id`: to every willing subscriber).
    api.waitfor("*", async (...values: unknown[]) => {
      const context = api.context!;
      const message = context.message;
      // A probe answer that came after its request timed out: nothing waits for it.
      if (message.startsWith("~")) return;
      const broadcast = message.startsWith("*");
      const id = broadcast ? message.slice(1) : message;
      if (!SUBSCRIBE_ID.test(id)) {
        return refuse(new TypeError(`route: invalid subscribe id ${JSON.stringify(id)}`), context);
      }
      // Nothing is returned: the reply address belongs to the receiver of the message.
      await run({ verb: broadcast ? "broadcast" : "route", id, values, context });
    });

    return {
      stop() {
        stopped = true;
        table[Symbol.dispose]();
        subscribers.remove();
      },
    };
  };
}

/** Starts a `=route+<id>` stage with the default times. */
export const startRouteService: ServiceFactory = routeService();
