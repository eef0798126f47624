/**
 * Scenario `c10k`: memory per idle connection and echo throughput at 1,000 / 5,000 /
 * 10,000 open connections (`--quick`: 1,000 and 5,000), a fresh server per level.
 *
 * Per level and server: warm up, read the RSS, open the connections (250 at a time),
 * make one round trip on each (so every one is accepted and served), let it settle,
 * read the RSS again: bytes per idle connection = growth / connections. Then 200 of
 * the open connections (spread over them) do echo round trips, one in flight each,
 * while the rest stay idle: replies/s and p50/p99.
 *
 * Both sides need a file descriptor per connection: the servers are started under
 * `sh -c "ulimit -n …"`, and `flow_bench.ts` re-runs this scenario under a raised
 * limit when its own is too low ({@linkcode c10kFileLimit}).
 * Goal: ≤ 10 KB per idle connection and ≤ 20% throughput drop from the first level
 * to the last, for Stage.
 *
 * @module
 */
import { ClosedLoopClient, connectClient, connectClients } from "./_flow_load.ts";
import { closeAll, connectMany, pingAll } from "./_flow_raw_load.ts";
import { delay, ReplyLog, round } from "./_flow_replies.ts";
import { type FlowOptions, measureSides, type ScenarioResult } from "./_flow_options.ts";
import { type ServerProcess, startNaive, startStage, withServer } from "./_flow_process.ts";

/**
 * Stage's `#flow` settings for this scenario: every client comes from 127.0.0.1, so
 * the per-IP bound must allow all of them. (`--no-flow` leaves the section out.)
 */
export const C10K_FLOW: Record<string, number> = { max_per_ip: 100_000, max_connections: 100_000 };

const ACTIVE = 200;
const WARM_CLIENTS = 20;
const SETTLE_MS = 1500;
/** File descriptors beyond the connections (listeners, workers, pipes, V8). */
const FD_MARGIN = 1024;
const GOAL_BYTES_PER_CONN = 10 * 1024;
const GOAL_DROP = 0.2;
const MB = 2 ** 20;

/** The connection counts of a run. */
export function c10kLevels(options: FlowOptions): number[] {
  return options.levels ?? (options.quick ? [1000, 5000] : [1000, 5000, 10_000]);
}

/** The open-file limit the load generator (and each server) needs for `levels`. */
export function c10kFileLimit(levels: number[]): number {
  return Math.max(...levels) + FD_MARGIN;
}

interface LevelFigures {
  connections: number;
  bytes_per_idle_conn: number;
  rss_before_mb: number;
  rss_after_mb: number;
  open_ms: number;
  msgs_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

/** The median of three RSS readings 250 ms apart. */
async function settledRss(server: ServerProcess): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await delay(250);
    samples.push(await server.rss());
  }
  return samples.sort((a, b) => a - b)[1]!;
}

async function warmUp(server: ServerProcess): Promise<void> {
  const log = new ReplyLog();
  const clients = (await connectClients(server.port, WARM_CLIENTS)).map((client, i) =>
    new ClosedLoopClient(i, client, log)
  );
  await delay(500);
  await Promise.all(clients.map((client) => client.close()));
}

async function measureLevel(
  server: ServerProcess,
  connections: number,
  seconds: number,
): Promise<LevelFigures> {
  const limit = await server.fileLimit();
  if (limit < connections + 64) {
    throw new Error(
      `${server.name} may open only ${limit} files, fewer than ${connections} connections need ` +
        `(the hard limit caps "ulimit -n"; raise it, e.g. in /etc/security/limits.conf)`,
    );
  }
  await warmUp(server);
  await delay(SETTLE_MS);
  const before = await settledRss(server);
  const openStart = performance.now();
  let conns: Deno.TcpConn[] = [];
  const log = new ReplyLog();
  let clients: ClosedLoopClient[] = [];
  try {
    conns = await connectMany(server.port, connections);
    await pingAll(conns);
    const openMs = performance.now() - openStart;
    await delay(SETTLE_MS);
    const after = await settledRss(server);

    const stride = Math.max(1, Math.floor(connections / ACTIVE));
    const active = conns.filter((_, i) => i % stride === 0).slice(0, ACTIVE);
    // The active clients drive connections among the idle ones: SDK clients adopting them.
    const adopted = await Promise.all(active.map((conn) => connectClient(server.port, conn)));
    clients = adopted.map((client, i) => new ClosedLoopClient(i, client, log));
    await delay(1000);
    const from = performance.now();
    await delay(seconds * 1000);
    const to = performance.now();
    const failed = clients.find((client) => client.failure !== undefined);
    if (failed !== undefined) {
      throw new Error(`active client ${failed.id} failed: ${failed.failure}`);
    }
    const stats = ReplyLog.stats(
      log.select({ receivedFrom: from, receivedTo: to }).latencies,
      (to - from) / 1000,
    );
    return {
      connections,
      bytes_per_idle_conn: Math.round((after - before) / connections),
      rss_before_mb: round(before / MB, 1),
      rss_after_mb: round(after / MB, 1),
      open_ms: Math.round(openMs),
      msgs_per_s: stats.replies_per_s,
      p50_ms: stats.p50_ms,
      p99_ms: stats.p99_ms,
    };
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    closeAll(conns);
  }
}

type LevelResult = LevelFigures | { connections: number; error: string };

interface SideSummary {
  levels: LevelResult[];
  /** At the last level (null if it failed). */
  bytes_per_idle_conn: number | null;
  /** 1 − last level's msgs/s ÷ first level's (null if either failed). */
  throughput_drop: number | null;
}

function summary(levels: LevelResult[]): SideSummary | null {
  if (levels.length === 0) return null;
  const first = levels[0]!;
  const last = levels[levels.length - 1]!;
  return {
    levels,
    bytes_per_idle_conn: "error" in last ? null : last.bytes_per_idle_conn,
    throughput_drop: "error" in first || "error" in last
      ? null
      : round(1 - last.msgs_per_s / first.msgs_per_s, 3),
  };
}

function ratio(stage: number | null | undefined, baseline: number | null | undefined) {
  return stage == null || baseline == null ? null : round(stage / baseline, 3);
}

function lastThroughput(side: SideSummary | null): number | undefined {
  const last = side?.levels[side.levels.length - 1];
  return last === undefined || "error" in last ? undefined : last.msgs_per_s;
}

/** Runs every level on Stage and on the naive baseline (fresh servers per level). */
export async function c10k(options: FlowOptions): Promise<ScenarioResult> {
  const levels = c10kLevels(options);
  const seconds = options.quick ? 3 : 5;
  const fileLimit = c10kFileLimit(levels);
  const stageLevels: LevelResult[] = [];
  const baselineLevels: LevelResult[] = [];
  for (const connections of levels) {
    const level = await measureSides(
      options,
      `c10k at ${connections} connections`,
      () =>
        withServer(
          () =>
            startStage(
              { workers: options.workers, ...(options.flow ? { flow: C10K_FLOW } : {}) },
              { fileLimit },
            ),
          (server) => measureLevel(server, connections, seconds),
        ),
      () =>
        withServer(
          () => startNaive({ fileLimit }),
          (server) => measureLevel(server, connections, seconds),
        ),
    );
    if (level.stage !== null) stageLevels.push({ connections, ...level.stage });
    if (level.baseline !== null) baselineLevels.push({ connections, ...level.baseline });
  }
  const stage = summary(stageLevels);
  const baseline = summary(baselineLevels);
  return {
    active: ACTIVE,
    seconds,
    workers: options.workers,
    flow: options.flow ? C10K_FLOW : null,
    stage,
    baseline,
    ratio: ratio(stage?.bytes_per_idle_conn, baseline?.bytes_per_idle_conn),
    ratio_throughput: ratio(lastThroughput(stage), lastThroughput(baseline)),
    goal:
      `stage.bytes_per_idle_conn <= ${GOAL_BYTES_PER_CONN} && stage.throughput_drop <= ${GOAL_DROP}`,
    goal_met: stage === null ? null : (stage.bytes_per_idle_conn ?? Infinity) <=
        GOAL_BYTES_PER_CONN && (stage.throughput_drop ?? Infinity) <= GOAL_DROP,
  };
}
