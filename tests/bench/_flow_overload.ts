/**
 * Scenario `overload`: a login stampede. Sessions arrive open-loop at 3× the rate the
 * server can serve, for 30 s (`--quick`: 8 s); Stage runs with `"#router": [50]`.
 *
 * Why sessions, not persistent connections: Stage protects itself by admission — when
 * the p95 dispatch delay exceeds the `#router` threshold it stops accepting (new
 * connections wait in the kernel backlog) and shrinks read budgets until the delay
 * recovers. Against a fixed set of open-loop connections that can only move the queue
 * into the sockets' kernel buffers, so every client's latency grows without bound on
 * any server. Against arriving sessions it is what the mechanism is for: the sessions
 * let in should be served promptly, the others should wait or give up, and memory
 * should stay flat.
 *
 * Both servers send a greeting frame on accept (`_flow_protocol.ts`: `greeting`
 * variant of the Stage script, `--greet` of the naive server). A session connects,
 * waits for the greeting — that is its admission; after {@linkcode ADMIT_TIMEOUT_MS}
 * since it started (connect included) it gives up and counts as `not_admitted` — then
 * sends {@linkcode REQUESTS} requests one after another (closed loop, 2 ms of handler
 * CPU each), timing each from send to reply, and closes.
 *
 * Capacity (sessions/s) is measured first on the same server: 6 sessions per Stage
 * worker run back to back for 2 s. Then sessions start at 3× that rate; at most
 * {@linkcode MAX_SESSIONS_IN_FLIGHT} are in progress at once (arrivals beyond that are
 * counted as `skipped`, so the generator does not swamp the shared 2-core machine). At
 * the end of the window the sessions still in progress are closed (`in_flight_at_end`).
 *
 * Figures per side: capacity, offered and admitted sessions/s; sessions not admitted
 * (timed out waiting for the greeting), refused (closed by the server before the
 * greeting), failed to connect, failed after admission, completed; the greeting wait
 * of admitted sessions (`admission_wait`); the latency of the requests answered
 * during the window (`admitted`); the server's RSS (VmRSS of the process tree every
 * 500 ms: start, max, growth = max − start). Goal: Stage RSS growth ≤ 50 MB and
 * admitted p99 ≤ 2 × threshold_ms.
 *
 * @module
 */
import { denoTransportWith, StageClient } from "../../core/client/mod.ts";
import { delay, type LatencyStats, percentile, ReplyLog, round } from "./_flow_replies.ts";
import { RssSampler } from "./_flow_memory.ts";
import {
  type FlowOptions,
  measureSides,
  ratioOf,
  type ScenarioResult,
  succeeded,
} from "./_flow_options.ts";
import { type ServerProcess, startNaive, startStage, withServer } from "./_flow_process.ts";
import { isGreeting, MAX_FRAME, PAYLOAD_BYTES, sentAt, stampRequest } from "./_flow_protocol.ts";

const COST_US = 2000;
/** Requests per session, one in flight at a time. */
const REQUESTS = 10;
/** A session not greeted this long after it started (connect included) gives up. */
const ADMIT_TIMEOUT_MS = 3000;
/** Sessions the generator keeps in progress at most; arrivals beyond are skipped. */
const MAX_SESSIONS_IN_FLIGHT = 3000;
/** Closed-loop sessions per Stage worker while measuring capacity. */
const CALIBRATION_SESSIONS_PER_WORKER = 6;
const CALIBRATION_SECONDS = 2;
const OVERLOAD_FACTOR = 3;
/** How often the arrival schedule is checked. */
const TICK_MS = 5;
const THRESHOLD_MS = 50;
const GOAL_RSS_MB = 50;
const GOAL_P99_MS = 2 * THRESHOLD_MS;
const MB = 2 ** 20;

/** How a session ended. `stopped`: still in progress when the window closed. */
type SessionEnd =
  | "completed"
  | "not_admitted"
  | "refused"
  | "connect_failed"
  | "failed"
  | "stopped";

interface SessionOutcome {
  end: SessionEnd;
  startedAt: number;
  /** When the greeting arrived (undefined: it did not). */
  admittedAt: number | undefined;
  /** The server broke the protocol (no greeting first, a frame of the wrong size). */
  invalid: boolean;
}

/**
 * One session: connect, wait for the greeting (at most {@linkcode ADMIT_TIMEOUT_MS}
 * from the start), {@linkcode REQUESTS} closed-loop requests logged to `log`, close.
 * A client SDK {@linkcode StageClient} (raw codec) whose connect the timeout aborts.
 * `done` never rejects.
 */
class Session {
  readonly id: number;
  readonly done: Promise<SessionOutcome>;
  readonly #controller = new AbortController();
  #client: StageClient | undefined;
  #stopped = false;
  #timedOut = false;

  constructor(port: number, id: number, log: ReplyLog) {
    this.id = id;
    this.done = this.#run(port, log);
  }

  /** Ends the session now (counted as `stopped`). */
  stop(): void {
    this.#stopped = true;
    this.#abort();
  }

  #abort(): void {
    this.#controller.abort();
    this.#client?.close();
  }

  async #run(port: number, log: ReplyLog): Promise<SessionOutcome> {
    const outcome: SessionOutcome = {
      end: "completed",
      startedAt: performance.now(),
      admittedAt: undefined,
      invalid: false,
    };
    // Why it ended early: our own stop or timeout first, else what the caller saw.
    const lost = (otherwise: SessionEnd): SessionOutcome => {
      outcome.end = this.#stopped ? "stopped" : this.#timedOut ? "not_admitted" : otherwise;
      return outcome;
    };
    const timer = setTimeout(() => {
      this.#timedOut = true;
      this.#abort();
    }, ADMIT_TIMEOUT_MS);
    try {
      try {
        this.#client = await StageClient.connect({
          port,
          codec: "raw",
          maxFrame: MAX_FRAME,
          transport: denoTransportWith({ signal: this.#controller.signal }),
        });
      } catch {
        return lost("connect_failed");
      }
      if (this.#stopped || this.#timedOut) return lost("connect_failed");
      const client = this.#client;
      let greeting: Uint8Array;
      try {
        // Closed by the server first: lost; closed by our timeout or stop: `lost` says so.
        greeting = await client.next<Uint8Array>();
      } catch {
        return lost("refused");
      }
      clearTimeout(timer);
      if (this.#timedOut) return lost("refused");
      if (greeting.length !== PAYLOAD_BYTES || !isGreeting(greeting)) {
        outcome.invalid = true;
        return lost("failed");
      }
      outcome.admittedAt = performance.now();
      const request = new Uint8Array(PAYLOAD_BYTES);
      for (let i = 0; i < REQUESTS; i++) {
        let reply: Uint8Array;
        try {
          await client.send(stampRequest(request, performance.now(), i, COST_US));
          reply = await client.next<Uint8Array>();
        } catch {
          return lost("failed");
        }
        const receivedAt = performance.now();
        if (reply.length !== PAYLOAD_BYTES || isGreeting(reply)) {
          outcome.invalid = true;
          return lost("failed");
        }
        log.record(sentAt(reply), receivedAt, this.id);
      }
      return outcome;
    } finally {
      clearTimeout(timer);
      await this.#client?.close();
    }
  }
}

/**
 * Open-loop arrivals: starts sessions at `ratePerS` from construction until `stop()`,
 * at most `bound` in progress (arrivals beyond are counted in `skipped`).
 */
class Arrivals {
  readonly outcomes: SessionOutcome[] = [];
  launched = 0;
  skipped = 0;
  maxInFlight = 0;
  readonly #live = new Set<Session>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(port: number, ratePerS: number, log: ReplyLog, bound: number) {
    const start = performance.now();
    let due = 0;
    const tick = () => {
      const target = Math.floor(((performance.now() - start) * ratePerS) / 1000) + 1;
      for (; due < target; due++) {
        if (this.#live.size >= bound) {
          this.skipped++;
          continue;
        }
        const session = new Session(port, this.launched++, log);
        this.#live.add(session);
        session.done.then((outcome) => {
          this.#live.delete(session);
          this.outcomes.push(outcome);
        });
      }
      this.maxInFlight = Math.max(this.maxInFlight, this.#live.size);
    };
    tick();
    this.#timer = setInterval(tick, TICK_MS);
  }

  /** Stops starting sessions. */
  stop(): void {
    clearInterval(this.#timer);
  }

  /** Stops starting sessions, ends those in progress and waits until all are recorded. */
  async abort(): Promise<void> {
    this.stop();
    const live = [...this.#live];
    for (const session of live) session.stop();
    await Promise.all(live.map((session) => session.done));
    await delay(0);
  }
}

/** Sessions/s of `concurrency` closed-loop session runners (sessions back to back). */
async function capacity(
  server: ServerProcess,
  seconds: number,
  concurrency: number,
): Promise<number> {
  const log = new ReplyLog();
  const completions: number[] = [];
  let stopped = false;
  const runner = async (first: number): Promise<void> => {
    for (let id = first; !stopped; id += concurrency) {
      const outcome = await new Session(server.port, id, log).done;
      if (outcome.end !== "completed" || outcome.invalid) {
        throw new Error(
          `calibration session ${id} ended ${outcome.end}${outcome.invalid ? " (invalid)" : ""}`,
        );
      }
      completions.push(performance.now());
    }
  };
  const runners = Array.from({ length: concurrency }, (_, i) => runner(i));
  const window = (async () => {
    await delay(500);
    const from = performance.now();
    await delay(seconds * 1000);
    return { from, to: performance.now() };
  })();
  // A runner that fails ends the measurement at once.
  const first = await Promise.race([window, ...runners]).finally(() => stopped = true);
  const settled = await Promise.allSettled(runners);
  const failed = settled.find((result) => result.status === "rejected");
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  if (first === undefined) throw new Error("a calibration runner ended early");
  const { from, to } = first;
  const done = completions.filter((at) => at >= from && at < to).length;
  if (done === 0) throw new Error("no session completed while measuring capacity");
  return done / ((to - from) / 1000);
}

interface OverloadFigures {
  capacity_sessions_per_s: number;
  offered_sessions_per_s: number;
  /** Sessions started (offered minus skipped). */
  started: number;
  /** Arrivals not started: the generator's bound of sessions in progress was reached. */
  skipped: number;
  peak_sessions_in_flight: number;
  admitted_sessions_per_s: number;
  /** Gave up: no greeting within the admission timeout. */
  not_admitted: number;
  /** Closed by the server before the greeting. */
  refused: number;
  connect_failed: number;
  /** Closed or failed after the greeting, before the last reply. */
  failed_after_admission: number;
  completed_sessions: number;
  /** Still in progress when the window closed (admitted or not). */
  in_flight_at_end: number;
  /** Greeting wait (from the session's start, connect included) of admitted sessions. */
  admission_wait: { p50_ms: number; p99_ms: number; max_ms: number };
  /** Requests answered during the window: send → reply. */
  admitted: LatencyStats;
  rss_start_mb: number;
  rss_max_mb: number;
  rss_growth_mb: number;
}

async function measure(
  server: ServerProcess,
  seconds: number,
  calibrationSessions: number,
): Promise<OverloadFigures> {
  const capacityPerS = await capacity(server, CALIBRATION_SECONDS, calibrationSessions);
  // Let the calibration's sessions close and the overload window forget them.
  await delay(1000);
  const offered = capacityPerS * OVERLOAD_FACTOR;
  const log = new ReplyLog();
  const rss = await RssSampler.start(server, 500);
  let arrivals: Arrivals | undefined;
  try {
    const from = performance.now();
    arrivals = new Arrivals(server.port, offered, log, MAX_SESSIONS_IN_FLIGHT);
    await delay(seconds * 1000);
    arrivals.stop();
    const to = performance.now();
    const memory = await rss.stop();
    await arrivals.abort();
    const elapsed = (to - from) / 1000;
    const outcomes = arrivals.outcomes;
    const invalid = outcomes.filter((outcome) => outcome.invalid).length;
    if (invalid > 0) throw new Error(`${invalid} sessions got a frame out of protocol`);
    const count = (end: SessionEnd) => outcomes.filter((outcome) => outcome.end === end).length;
    const waits = Float64Array.from(
      outcomes.filter((outcome) => outcome.admittedAt !== undefined),
      (outcome) => outcome.admittedAt! - outcome.startedAt,
    ).sort();
    return {
      capacity_sessions_per_s: round(capacityPerS, 1),
      offered_sessions_per_s: round(offered, 1),
      started: arrivals.launched,
      skipped: arrivals.skipped,
      peak_sessions_in_flight: arrivals.maxInFlight,
      admitted_sessions_per_s: round(waits.length / elapsed, 1),
      not_admitted: count("not_admitted"),
      refused: count("refused"),
      connect_failed: count("connect_failed"),
      failed_after_admission: count("failed"),
      completed_sessions: count("completed"),
      in_flight_at_end: count("stopped"),
      admission_wait: {
        p50_ms: round(percentile(waits, 0.5), 2),
        p99_ms: round(percentile(waits, 0.99), 2),
        max_ms: round(waits.length === 0 ? NaN : waits[waits.length - 1]!, 2),
      },
      admitted: ReplyLog.stats(
        log.select({ receivedFrom: from, receivedTo: to }).latencies,
        elapsed,
      ),
      rss_start_mb: round(memory.start / MB, 1),
      rss_max_mb: round(memory.max / MB, 1),
      rss_growth_mb: round((memory.max - memory.start) / MB, 1),
    };
  } finally {
    await rss.stop();
    await arrivals?.abort();
  }
}

/** Runs the scenario on Stage (`#router: [50]`) and on the naive baseline. */
export async function overload(options: FlowOptions): Promise<ScenarioResult> {
  const seconds = options.quick ? 8 : 30;
  const calibrationSessions = CALIBRATION_SESSIONS_PER_WORKER * options.workers;
  const sides = await measureSides(
    options,
    "overload",
    () =>
      withServer(
        () =>
          startStage({
            workers: options.workers,
            router: [THRESHOLD_MS],
            // Every session comes from 127.0.0.1: lift the per-IP bound (it is for real crowds).
            flow: { max_per_ip: 100_000 },
            greeting: true,
          }),
        (server) => measure(server, seconds, calibrationSessions),
      ),
    () =>
      withServer(
        () => startNaive({}, true),
        (server) => measure(server, seconds, calibrationSessions),
      ),
  );
  const stage = succeeded(sides.stage);
  return {
    seconds,
    requests_per_session: REQUESTS,
    cost_ms: COST_US / 1000,
    overload_factor: OVERLOAD_FACTOR,
    admit_timeout_ms: ADMIT_TIMEOUT_MS,
    max_sessions_in_flight: MAX_SESSIONS_IN_FLIGHT,
    calibration_sessions: calibrationSessions,
    workers: options.workers,
    threshold_ms: THRESHOLD_MS,
    ...sides,
    ratio: ratioOf(sides, (side) => side.admitted.p99_ms),
    ratio_rss_growth: ratioOf(sides, (side) => side.rss_growth_mb),
    ratio_replies: ratioOf(sides, (side) => side.admitted.replies_per_s),
    ratio_admitted_sessions: ratioOf(sides, (side) => side.admitted_sessions_per_s),
    goal: `stage.rss_growth_mb <= ${GOAL_RSS_MB} && stage.admitted.p99_ms <= ${GOAL_P99_MS}`,
    goal_met: sides.stage === null
      ? null
      : stage !== undefined && stage.rss_growth_mb <= GOAL_RSS_MB &&
        stage.admitted.p99_ms <= GOAL_P99_MS,
  };
}
