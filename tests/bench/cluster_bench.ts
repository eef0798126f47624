// deno-lint-ignore-file no-console
/**
 * `deno task bench cluster [--quick]`: what running Stage as several processes
 * costs and buys on one machine. One JSON line per scenario:
 * - `request over the local bus`: a `front` stage in `#startup` group 0 times
 *   `stage.request("calc:who", 64-char string)` round trips (performance.now, in
 *   the script) to `calc` in group 1 under `stage run --supervise`, one at a time
 *   (round trips/s, p50, p99) and 64 in flight (round trips/s). Baseline: the same
 *   requests with both stages in one group and process (`stage run --single`).
 * - `nats request/reply floor`: two NatsLink clients in this process against a
 *   real nats-server, 64-byte requests and 8-byte replies, one at a time and 64
 *   in flight; with the ratio of the local bus figures above to it.
 * - `request over NATS (two nodes on one machine)`: the same front → calc round
 *   trips with front and calc under two supervisors with different
 *   `#cluster.node` names on one nats-server; baseline: the NATS floor above.
 * - `echo with 1, 2 and 4 process groups sharing one port`: groups each running
 *   the same raw echo stage on one `#services` port (SO_REUSEPORT), driven by the
 *   echo bench's load generator (50 connections × 8 in flight × 64 B); msgs/s and
 *   p99 per group count, 1 group as the baseline.
 *
 * Options: `--quick` (fewer requests, 2 s echo windows), `--requests N` (round
 * trips one at a time; 10 × N with 64 in flight), `--seconds N` (echo window),
 * `--workers N` (workers per echo group, default 1).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { StageClient } from "../../core/client/mod.ts";
import { NatsLink } from "../../core/cluster/mod.ts";
import { startNatsServer } from "../_helpers/nats_server.ts";
import { type StageCluster, startCluster } from "./_cluster_process.ts";
import {
  CALC,
  ECHO,
  echoConfig,
  FRONT,
  type FrontResult,
  requestConfig,
} from "./_cluster_scripts.ts";
import { drive, type EchoResult, parseSetting } from "./echo_bench.ts";
import { freePort } from "./_flow_process.ts";

const PAYLOAD = 64;
const REPLY = 8;
const INFLIGHT = 64;
const ECHO_SETTING = "50x8x64";
const ECHO_GROUPS = [1, 2, 4];
const ASK_TIMEOUT_MS = 300_000;
const MEMBERSHIP_TIMEOUT_MS = 20_000;

interface Options {
  requests: number;
  seconds: number;
  warmup: number;
  workers: number;
}

/** Round trips one at a time (`sequential`) or {@link INFLIGHT} at a time. */
interface RoundTrips {
  count: number;
  round_trips_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

interface Pair {
  sequential: RoundTrips;
  inflight_64: RoundTrips;
}

function parseOptions(args: string[]): Options {
  const options: Options = { requests: 5000, seconds: 5, warmup: 1, workers: 1 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): number => {
      const text = args[++i];
      const n = Number(text);
      if (text === undefined || !(n > 0) || !Number.isFinite(n)) {
        throw new RangeError(`cluster bench: ${arg} expects a positive number; got "${text}"`);
      }
      return n;
    };
    if (arg === "--quick") Object.assign(options, { requests: 500, seconds: 2 });
    else if (arg === "--requests") options.requests = Math.ceil(value());
    else if (arg === "--seconds") options.seconds = value();
    else if (arg === "--workers") options.workers = Math.ceil(value());
    else throw new RangeError(`cluster bench: unknown option "${arg}"`);
  }
  return options;
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

function roundTrips(count: number, ms: number, p50: number, p99: number): RoundTrips {
  return {
    count,
    round_trips_per_s: Math.round(count / (ms / 1000)),
    p50_ms: round(p50, 3),
    p99_ms: round(p99, 3),
  };
}

/** `ours / theirs` of each figure: > 1 means more round trips/s or a longer wait. */
function ratios(ours: Pair, theirs: Pair): Record<string, number> {
  const r = (a: number, b: number) => round(a / b, 3);
  return {
    ratio_sequential: r(ours.sequential.round_trips_per_s, theirs.sequential.round_trips_per_s),
    ratio_p50_sequential: r(ours.sequential.p50_ms, theirs.sequential.p50_ms),
    ratio_p99_sequential: r(ours.sequential.p99_ms, theirs.sequential.p99_ms),
    ratio_inflight_64: r(ours.inflight_64.round_trips_per_s, theirs.inflight_64.round_trips_per_s),
  };
}

/** One scenario's line; `load_1m` (the machine's load when it ends) tells a busy machine. */
function print(line: Record<string, unknown>): void {
  const load = round(Deno.loadavg()[0]!, 2);
  console.log(JSON.stringify({ bench: "cluster", ...line, load_1m: load }));
}

/** Runs `body` with a started deployment; stops it (and reports a bad exit) however it ends. */
async function withCluster<T>(start: Promise<StageCluster>, body: () => Promise<T>): Promise<T> {
  const cluster = await start;
  const { server } = cluster;
  try {
    return await body();
  } catch (error) {
    throw new Error(
      `cluster bench: ${server.name}: ${
        (error as Error).message
      }\n--- last output:\n${server.output()}`,
      { cause: error },
    );
  } finally {
    const status = await cluster.stop();
    if (!status.success) {
      console.error(
        `cluster bench: ${server.name} exited with ${
          status.signal ?? `code ${status.code}`
        }; last output:\n${server.output()}`,
      );
    }
  }
}

/** front → calc round trips with the two stages in two processes or in one. */
async function requestPair(crossProcess: boolean, options: Options): Promise<Pair> {
  const port = freePort();
  const start = startCluster({
    name: crossProcess ? "supervisor (front | calc)" : "single process (front + calc)",
    config: requestConfig(crossProcess),
    scripts: { "front.ts": FRONT, "calc.ts": CALC },
    mode: crossProcess ? "supervise" : "single",
    port,
    args: [String(port)],
  });
  return await withCluster(start, () => measureFront(port, crossProcess ? 1 : 0, options));
}

/**
 * front → calc round trips with front and calc on two "machines": two
 * supervisors with different `#cluster.node` names on one real nats-server.
 */
async function natsStagePair(options: Options): Promise<Pair> {
  await using nats = await startNatsServer();
  const cluster = (node: string) => ({ nats: [nats.url], node });
  const single = (stage: string) => ({
    "#threads": [1, 10000],
    "#startup": [[`script+${stage}`]],
    script: { "%package": ["scripts"], [`script+${stage}`]: stage },
  });
  const calcPort = freePort();
  const calc = startCluster({
    name: "node beta (calc)",
    config: { ...single("calc"), "#cluster": cluster("beta") },
    scripts: { "calc.ts": CALC },
    mode: "supervise",
    port: calcPort,
    args: [String(calcPort)],
  });
  return await withCluster(calc, async () => {
    const port = freePort();
    const front = startCluster({
      name: "node alpha (front)",
      config: { ...single("front"), "#cluster": cluster("alpha") },
      scripts: { "front.ts": FRONT },
      mode: "supervise",
      port,
      args: [String(port)],
    });
    return await withCluster(front, () => measureFront(port, 0, options));
  });
}

/** Drives the front on `port`: sequential and 64-in-flight round trips to calc in group `group`. */
async function measureFront(port: number, group: number, options: Options): Promise<Pair> {
  await using client = await StageClient.connect({ port, codec: "json" });
  const ask = async <T>(command: Record<string, unknown>): Promise<T> => {
    await client.send(command);
    const reply = await client.next<T & { error?: string }>(ASK_TIMEOUT_MS);
    if (reply.error !== undefined) throw new Error(`front: ${reply.error}`);
    return reply;
  };
  // calc's membership reaches the front's process shortly after both joined the bus.
  const deadline = Date.now() + MEMBERSHIP_TIMEOUT_MS;
  let expect: number;
  for (;;) {
    try {
      expect = (await ask<{ group: number }>({ op: "who" })).group;
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  if (expect !== group) throw new Error(`calc answered from group ${expect}, not ${group}`);
  const measure = async (count: number, inflight: number): Promise<RoundTrips> => {
    const r = await ask<FrontResult>({ op: "run", count, inflight, payload: PAYLOAD, expect });
    if (r.wrong > 0) throw new Error(`${r.wrong} of ${count} replies came from another group`);
    return roundTrips(count, r.ms, r.p50, r.p99);
  };
  await measure(Math.ceil(options.requests / 5), INFLIGHT); // warm-up
  return {
    sequential: await measure(options.requests, 1),
    inflight_64: await measure(options.requests * 10, INFLIGHT),
  };
}

/** `count` calls of `once`, `inflight` at a time, each timed. */
async function timeRoundTrips(
  count: number,
  inflight: number,
  once: () => Promise<void>,
): Promise<RoundTrips> {
  const latencies = new Float64Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const t = performance.now();
      await once();
      latencies[i] = performance.now() - t;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inflight }, lane));
  const ms = performance.now() - start;
  latencies.sort();
  const at = (p: number) => latencies[Math.min(count - 1, Math.floor(count * p))]!;
  return roundTrips(count, ms, at(0.5), at(0.99));
}

/** Request/reply between two plain NATS clients of this process through a real server. */
async function natsPair(options: Options): Promise<Pair> {
  await using server = await startNatsServer();
  const log = getLogger(["stage", "bench"]);
  const link = (name: string) => NatsLink.connect({ servers: [server.url], name, log });
  await using responder = await link("bench-responder");
  await using requester = await link("bench-requester");
  const reply = new Uint8Array(REPLY);
  responder.subscribe("bench.who", (_bytes, message) => message.respond(reply));
  await responder.flush();
  const payload = new Uint8Array(PAYLOAD);
  const once = async () => {
    const bytes = await requester.request("bench.who", payload, 10_000);
    if (bytes.length !== REPLY) throw new Error(`a reply of ${bytes.length} bytes, not ${REPLY}`);
  };
  await timeRoundTrips(Math.ceil(options.requests / 5), INFLIGHT, once); // warm-up
  return {
    sequential: await timeRoundTrips(options.requests, 1, once),
    inflight_64: await timeRoundTrips(options.requests * 10, INFLIGHT, once),
  };
}

/** The echo load against `groups` processes sharing one port. */
async function echoGroups(groups: number, options: Options): Promise<EchoResult> {
  const port = freePort();
  const start = startCluster({
    name: `supervisor (${groups} echo group${groups === 1 ? "" : "s"})`,
    config: echoConfig(groups, port, options.workers),
    scripts: { "echo.ts": ECHO },
    mode: "supervise",
    port,
    args: [String(port)],
  });
  return await withCluster(
    start,
    () => drive(port, parseSetting(ECHO_SETTING), options.seconds, options.warmup),
  );
}

/** Runs the three scenarios and prints one JSON line for each. */
export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const cores = navigator.hardwareConcurrency;

  const cross = await requestPair(true, options);
  const same = await requestPair(false, options);
  print({
    scenario: "request over the local bus",
    payload_bytes: PAYLOAD,
    cross_process: cross,
    baseline_same_process: same,
    ...ratios(cross, same),
  });

  const overNats = await natsStagePair(options);
  const nats = await natsPair(options);
  print({
    scenario: "nats request/reply floor",
    payload_bytes: PAYLOAD,
    reply_bytes: REPLY,
    nats,
    local_bus_cross_process: cross,
    ...ratios(cross, nats),
    note: "both NATS clients share this process's event loop; ratios are local bus / NATS",
  });
  print({
    scenario: "request over NATS (two nodes on one machine)",
    payload_bytes: PAYLOAD,
    stage_over_nats: overNats,
    baseline_nats_floor: nats,
    ...ratios(overNats, nats),
    note: "two supervisors with different #cluster.node on one nats-server, sharing 2 cores",
  });

  const echo: Record<string, EchoResult> = {};
  for (const groups of ECHO_GROUPS) echo[groups] = await echoGroups(groups, options);
  const base = echo[1]!;
  const others = ECHO_GROUPS.slice(1);
  print({
    scenario: "echo with 1, 2 and 4 process groups sharing one port",
    setting: ECHO_SETTING,
    seconds: options.seconds,
    workers_per_group: options.workers,
    cores,
    groups: echo,
    baseline: "1 group",
    ratio_msgs: Object.fromEntries(
      others.map((g) => [g, round(echo[g]!.msgs_per_s / base.msgs_per_s, 3)]),
    ),
    ratio_p99: Object.fromEntries(others.map((g) => [g, round(echo[g]!.p99_ms / base.p99_ms, 3)])),
    note: `${cores} cores shared by the load generator and every group: expect a plateau`,
  });
}

if (import.meta.main) await run(Deno.args);
