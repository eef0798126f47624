/**
 * Scenario `preemption`: 20 clients send echo requests at a steady pace (open loop,
 * one every 10 ms each, so a stalled client keeps sending and every stalled request
 * shows in the latencies); then one extra client sends a single frame whose handler
 * spins the CPU for 2 s without yielding. Figures: the other clients' p50/p99/max for
 * the requests sent during those 2 s, and for a second before. Stage runs with
 * `#threads: [2]`; the baseline has one event loop, so ≈2000 ms is expected there.
 * Goal: Stage p99 ≤ 100 ms.
 *
 * @module
 */
import { connectClients, oneRequest, PacedClient, Pacer } from "./_flow_load.ts";
import { delay, type LatencyStats, ReplyLog, round } from "./_flow_replies.ts";
import {
  type FlowOptions,
  measureSides,
  ratioOf,
  type ScenarioResult,
  succeeded,
} from "./_flow_options.ts";
import { type ServerProcess, startNaive, startStage, withServer } from "./_flow_process.ts";

const CLIENTS = 20;
const RATE_PER_CLIENT = 100;
const SPIN_MS = 2000;
/** How long the spinning request may take before the scenario gives up on it. */
const SPIN_TIMEOUT_MS = 30_000;
/** Time after the spin reply for replies to requests sent during the spin. */
const SETTLE_MS = 1000;
/** A client whose worst latency during the spin exceeds this counts as stalled. */
const STALL_MS = 100;
const GOAL_P99_MS = 100;
const STAGE_WORKERS = 2;

interface PreemptionFigures {
  before: LatencyStats;
  during: LatencyStats & { unanswered: number; stalled_clients: number };
  spin_reply_ms: number;
}

async function measure(server: ServerProcess, warmupMs: number): Promise<PreemptionFigures> {
  const log = new ReplyLog();
  const connected = await connectClients(server.port, CLIENTS + 1);
  const spinClient = connected.pop()!; // connected last: homed wherever the server puts it
  const clients = connected.map((client, i) => new PacedClient(i, client, log, RATE_PER_CLIENT));
  const pacer = new Pacer(clients);
  try {
    await delay(warmupMs);
    const beforeFrom = performance.now();
    await delay(1000);

    const spinFrom = performance.now();
    const spinReplyMs = await oneRequest(spinClient, SPIN_MS * 1000, SPIN_TIMEOUT_MS).catch(
      (error) => {
        throw new Error(`no reply to the ${SPIN_MS} ms spin: ${(error as Error).message}`, {
          cause: error,
        });
      },
    );
    await delay(Math.max(0, spinFrom + SPIN_MS - performance.now()) + SETTLE_MS);
    pacer.stop();

    const failed = clients.find((client) => client.failure !== undefined);
    if (failed !== undefined) {
      throw new Error(`client ${failed.id} failed: ${failed.failure}`, { cause: failed.failure });
    }
    const before = ReplyLog.stats(
      log.select({ sentFrom: beforeFrom, sentTo: spinFrom }).latencies,
      (spinFrom - beforeFrom) / 1000,
    );
    const during = log.select({ sentFrom: spinFrom, sentTo: spinFrom + SPIN_MS });
    const worst = new Map<number, number>();
    during.latencies.forEach((ms, i) => {
      const id = during.clients[i]!;
      worst.set(id, Math.max(worst.get(id) ?? 0, ms));
    });
    return {
      before,
      during: {
        ...ReplyLog.stats(during.latencies, SPIN_MS / 1000),
        unanswered: log.sentBetween(spinFrom, spinFrom + SPIN_MS) - during.latencies.length,
        stalled_clients: [...worst.values()].filter((ms) => ms > STALL_MS).length,
      },
      spin_reply_ms: round(spinReplyMs, 1),
    };
  } finally {
    pacer.stop();
    await spinClient.close();
    await Promise.all(clients.map((client) => client.close()));
  }
}

/** Runs the scenario on Stage (2 workers) and on the naive baseline. */
export async function preemption(options: FlowOptions): Promise<ScenarioResult> {
  const warmupMs = options.quick ? 500 : 1000;
  const sides = await measureSides(
    options,
    "preemption",
    () =>
      withServer(
        () => startStage({ workers: STAGE_WORKERS }),
        (server) => measure(server, warmupMs),
      ),
    () => withServer(() => startNaive(), (server) => measure(server, warmupMs)),
  );
  return {
    clients: CLIENTS,
    rate_per_client: RATE_PER_CLIENT,
    spin_ms: SPIN_MS,
    workers: STAGE_WORKERS,
    ...sides,
    ratio: ratioOf(sides, (side) => side.during.p99_ms),
    goal: `stage.during.p99_ms <= ${GOAL_P99_MS}`,
    goal_met: sides.stage === null
      ? null
      : (succeeded(sides.stage)?.during.p99_ms ?? Infinity) <= GOAL_P99_MS,
  };
}
