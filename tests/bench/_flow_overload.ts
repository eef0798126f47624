/**
 * Scenario `overload`: a "slow" handler (2 ms of CPU per frame) offered ≈3× the
 * server's capacity for 30 s (`--quick`: 8 s). Capacity is measured first on the same
 * server (50 connections, 2 requests in flight each, for 2 s); then 50 open-loop
 * connections send 3× that rate. Stage runs with `"#router": [50]`.
 *
 * Figures: the server's RSS (VmRSS of the process tree every 500 ms: start, max,
 * growth = max − start), the latency of the requests that got replies during the
 * window ("admitted"), replies/s, and what the clients could not send (TCP
 * backpressure). Goal: Stage RSS growth ≤ 50 MB and admitted p99 ≤ 2 × threshold_ms.
 *
 * @module
 */
import { ClosedLoopClient, connectMany, PacedClient, Pacer } from "./_flow_load.ts";
import { delay, type LatencyStats, ReplyLog, round } from "./_flow_replies.ts";
import { RssSampler } from "./_flow_memory.ts";
import {
  type FlowOptions,
  measureSides,
  ratioOf,
  type ScenarioResult,
  succeeded,
} from "./_flow_options.ts";
import { type ServerProcess, startNaive, startStage, withServer } from "./_flow_process.ts";

const COST_US = 2000;
const CONNECTIONS = 50;
const CALIBRATION_DEPTH = 2;
const OVERLOAD_FACTOR = 3;
const THRESHOLD_MS = 50;
const GOAL_RSS_MB = 50;
const GOAL_P99_MS = 2 * THRESHOLD_MS;
const MB = 2 ** 20;

interface OverloadFigures {
  capacity_per_s: number;
  offered_per_s: number;
  sent_per_s: number;
  unsent_per_s: number;
  admitted: LatencyStats;
  in_flight_at_end: number;
  closed_by_server: number;
  rss_start_mb: number;
  rss_max_mb: number;
  rss_growth_mb: number;
}

/** Replies/s of a closed loop that keeps every worker busy. */
async function capacity(server: ServerProcess, seconds: number): Promise<number> {
  const log = new ReplyLog();
  const conns = await connectMany(server.port, CONNECTIONS);
  const clients = conns.map((conn, i) =>
    new ClosedLoopClient(i, conn, log, CALIBRATION_DEPTH, COST_US)
  );
  try {
    await delay(500);
    const from = performance.now();
    await delay(seconds * 1000);
    const to = performance.now();
    const failed = clients.find((client) => client.failure !== undefined);
    if (failed !== undefined) {
      throw new Error(`calibration client ${failed.id} failed: ${failed.failure}`);
    }
    const replies = log.select({ receivedFrom: from, receivedTo: to }).latencies.length;
    if (replies === 0) throw new Error("no replies while measuring capacity");
    return replies / ((to - from) / 1000);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}

async function measure(server: ServerProcess, seconds: number): Promise<OverloadFigures> {
  const capacityPerS = await capacity(server, 2);
  // Let the calibration's requests drain (100 × 2 ms at most per worker).
  await delay(1000);
  const offered = capacityPerS * OVERLOAD_FACTOR;
  const log = new ReplyLog();
  const conns = await connectMany(server.port, CONNECTIONS);
  const clients = conns.map((conn, i) =>
    new PacedClient(i, conn, log, offered / CONNECTIONS, COST_US)
  );
  const rss = await RssSampler.start(server, 500);
  let pacer: Pacer | undefined;
  try {
    const from = performance.now();
    pacer = new Pacer(clients);
    await delay(seconds * 1000);
    pacer.stop();
    const to = performance.now();
    const memory = await rss.stop();
    if (log.invalid > 0) throw new Error(`${log.invalid} replies had the wrong length`);
    const elapsed = (to - from) / 1000;
    const sent = clients.reduce((sum, client) => sum + client.sent, 0);
    const unsent = clients.reduce((sum, client) => sum + client.unsent, 0);
    return {
      capacity_per_s: Math.round(capacityPerS),
      offered_per_s: Math.round(offered),
      sent_per_s: Math.round(sent / elapsed),
      unsent_per_s: Math.round(unsent / elapsed),
      admitted: ReplyLog.stats(
        log.select({ receivedFrom: from, receivedTo: to }).latencies,
        elapsed,
      ),
      in_flight_at_end: Math.max(0, sent - log.count),
      closed_by_server: clients.filter((client) => client.failure !== undefined).length,
      rss_start_mb: round(memory.start / MB, 1),
      rss_max_mb: round(memory.max / MB, 1),
      rss_growth_mb: round((memory.max - memory.start) / MB, 1),
    };
  } finally {
    pacer?.stop();
    await rss.stop();
    await Promise.all(clients.map((client) => client.close()));
  }
}

/** Runs the scenario on Stage (`#router: [50]`) and on the naive baseline. */
export async function overload(options: FlowOptions): Promise<ScenarioResult> {
  const seconds = options.quick ? 8 : 30;
  const sides = await measureSides(
    options,
    "overload",
    () =>
      withServer(
        () => startStage({ workers: options.workers, router: [THRESHOLD_MS] }),
        (server) => measure(server, seconds),
      ),
    () => withServer(() => startNaive(), (server) => measure(server, seconds)),
  );
  const stage = succeeded(sides.stage);
  return {
    seconds,
    connections: CONNECTIONS,
    cost_ms: COST_US / 1000,
    overload_factor: OVERLOAD_FACTOR,
    workers: options.workers,
    threshold_ms: THRESHOLD_MS,
    ...sides,
    ratio: ratioOf(sides, (side) => side.admitted.p99_ms),
    ratio_rss_growth: ratioOf(sides, (side) => side.rss_growth_mb),
    ratio_replies: ratioOf(sides, (side) => side.admitted.replies_per_s),
    goal: `stage.rss_growth_mb <= ${GOAL_RSS_MB} && stage.admitted.p99_ms <= ${GOAL_P99_MS}`,
    goal_met: sides.stage === null
      ? null
      : stage !== undefined && stage.rss_growth_mb <= GOAL_RSS_MB &&
        stage.admitted.p99_ms <= GOAL_P99_MS,
  };
}
