/**
 * Scenario `fairness`: 50 well-behaved clients (one echo request in flight each)
 * measured for a window without and then with one flooder (writes frames as fast
 * as it can, never reads). Figures: the clients' p50/p99 in both windows and the
 * factor with/without; the goal is a Stage p99 factor ≤ 2. The "with" window ends
 * early if the server closes the flooder (Stage does, as a slow reader, once its
 * output bound is reached); `flooder.with_window_s` says how long it lasted.
 *
 * @module
 */
import { ClosedLoopClient, connectClients } from "./_flow_load.ts";
import { Flooder } from "./_flow_raw_load.ts";
import { delay, type LatencyStats, ReplyLog, round } from "./_flow_replies.ts";
import {
  type FlowOptions,
  measureSides,
  ratioOf,
  type ScenarioResult,
  succeeded,
} from "./_flow_options.ts";
import { type ServerProcess, startNaive, startStage, withServer } from "./_flow_process.ts";

const CLIENTS = 50;
/** Time for the flood to fill the queues before the second window. */
const FLOOD_LEAD_MS = 500;
const GOAL_FACTOR = 2;

interface FairnessFigures {
  without: LatencyStats;
  with: LatencyStats;
  factor_p50: number;
  factor_p99: number;
  flooder: {
    frames_per_s: number;
    closed_by_server_after_ms: number | null;
    /** The "with" window: from the flood's lead-in until it ended or was closed. */
    with_window_s: number;
  };
  rss_growth_mb_during_flood: number;
}

async function measure(
  server: ServerProcess,
  seconds: number,
  warmupMs: number,
): Promise<FairnessFigures> {
  const log = new ReplyLog();
  const clients = (await connectClients(server.port, CLIENTS)).map((client, i) =>
    new ClosedLoopClient(i, client, log)
  );
  let flooder: Flooder | undefined;
  try {
    await delay(warmupMs);
    const quietFrom = performance.now();
    await delay(seconds * 1000);
    const quietTo = performance.now();

    const rssBefore = await server.rss();
    const floodConn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const floodStart = performance.now();
    flooder = new Flooder(floodConn);
    await delay(FLOOD_LEAD_MS);
    const floodFrom = performance.now();
    await delay(seconds * 1000);
    const floodTo = performance.now();
    const rssAfter = await server.rss();
    const floodFrames = flooder.framesWritten;

    const failed = clients.find((client) => client.failure !== undefined);
    if (failed !== undefined) {
      throw new Error(`well-behaved client ${failed.id} failed: ${failed.failure}`, {
        cause: failed.failure,
      });
    }
    if (log.invalid > 0) throw new Error(`${log.invalid} replies had the wrong length`);
    const without = ReplyLog.stats(
      log.select({ receivedFrom: quietFrom, receivedTo: quietTo }).latencies,
      (quietTo - quietFrom) / 1000,
    );
    // Only while the flooder is connected: a server may close it (a slow reader).
    const withTo = Math.min(floodTo, flooder.closedAt ?? Infinity);
    const withFlood = ReplyLog.stats(
      log.select({ receivedFrom: floodFrom, receivedTo: withTo }).latencies,
      Math.max(0, withTo - floodFrom) / 1000,
    );
    return {
      without,
      with: withFlood,
      factor_p50: round(withFlood.p50_ms / without.p50_ms, 2),
      factor_p99: round(withFlood.p99_ms / without.p99_ms, 2),
      flooder: {
        frames_per_s: Math.round(floodFrames / ((floodTo - floodStart) / 1000)),
        closed_by_server_after_ms: flooder.closedAfterMs ?? null,
        with_window_s: round(Math.max(0, withTo - floodFrom) / 1000, 2),
      },
      rss_growth_mb_during_flood: round((rssAfter - rssBefore) / 2 ** 20, 1),
    };
  } finally {
    await flooder?.close();
    await Promise.all(clients.map((client) => client.close()));
  }
}

/** Runs the scenario on Stage and on the naive baseline. */
export async function fairness(options: FlowOptions): Promise<ScenarioResult> {
  const seconds = options.quick ? 2 : 5;
  const warmupMs = options.quick ? 500 : 1000;
  const sides = await measureSides(
    options,
    "fairness",
    () =>
      withServer(
        () => startStage({ workers: options.workers }),
        (server) => measure(server, seconds, warmupMs),
      ),
    () => withServer(() => startNaive(), (server) => measure(server, seconds, warmupMs)),
  );
  return {
    clients: CLIENTS,
    seconds,
    workers: options.workers,
    ...sides,
    ratio: ratioOf(sides, (side) => side.factor_p99),
    goal: `stage.factor_p99 <= ${GOAL_FACTOR}`,
    goal_met: sides.stage === null
      ? null
      : (succeeded(sides.stage)?.factor_p99 ?? Infinity) <= GOAL_FACTOR,
  };
}
