/**
 * What the admin HTTP API reads and acts through: {@link AdminSources}, an
 * interface of plain-data results, so the HTTP app is tested with fakes and
 * knows nothing of the runtime. {@link processSources} implements it from a
 * {@link RunningProcess}; what a running process cannot answer by itself
 * (routes, workers, signal, reload, drain) comes from callbacks.
 *
 * @module
 */
import type { RunningProcess } from "../cluster/mod.ts";
import type { StageKind } from "../config/mod.ts";
import { type MetricsSnapshot, renderPrometheus } from "../metrics/mod.ts";
import { type Clock, systemClock } from "../time/mod.ts";

/** A value `JSON.stringify` writes as is. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** The process's state as `/health` reports it; only `"ready"` is ready. */
export type HealthState = "ready" | "overloaded" | "draining" | "starting";

/** Liveness and readiness: the process answers (`live`), and takes new work (`ready`). */
export interface Health {
  live: true;
  ready: boolean;
  state: HealthState;
  /** A supervisor's processes, each with its state. */
  processes?: { process: string; state: string }[];
}

/** Workers of a script stage. */
export interface StageWorkers {
  /** Workers in the pool. */
  total: number;
  /** Workers running a handler now. */
  busy: number;
  /** Messages dispatched and not finished, per worker. */
  inFlight: number[];
}

/** A script stage of the process. */
export interface ScriptStageInfo {
  id: string;
  kind: "script";
  /** Where the stage is in its life (it takes messages while `ready` or `reloading`). */
  state: "starting" | "ready" | "reloading" | "stopping";
  /** Instances of the stage id on the bus: this one and those of the other processes it knows. */
  instances: number;
  /** Messages queued on the main thread, not yet dispatched. */
  queueDepth: number;
  /** Messages dispatched to workers and not finished. */
  inFlight: number;
  /** Age of the oldest queued message, ms (0 when none waits). */
  oldestQueuedMs: number;
  /** Open sockets of the stage. */
  sockets: number;
  workers: StageWorkers;
}

/** A service stage (ticket, route, index, agent) of the process. */
export interface ServiceStageInfo {
  id: string;
  /** The `#startup` kind (`"=ticket"`, `"=route"`, `"index"`, `"agent"`). */
  kind: Exclude<StageKind, "script">;
  state: "starting" | "ready" | "stopping";
  instances: number;
  /** Messages waiting to be handled. */
  queueDepth: number;
}

/** One entry of `/stages`. */
export type StageInfo = ScriptStageInfo | ServiceStageInfo;

/**
 * What an open socket is doing: output committed and not yet written
 * (`writing`), else frames waiting for handlers (`busy`), else `idle`.
 */
export type SocketState = "writing" | "busy" | "idle";

/** One of the top talkers of `/sockets`. */
export interface SocketTalker {
  stage: string;
  id: number;
  url: string;
  remote: string;
  state: SocketState;
  /** The worker that owns the socket's state. */
  home: number | null;
  pendingFrames: number;
  queuedOutBytes: number;
  bytesIn: number;
  bytesOut: number;
}

/** `/sockets`: counts by state and the sockets with the most output queued. */
export interface SocketsReport {
  /** Open sockets, all stages. */
  open: number;
  /** Open sockets by {@link SocketState}. */
  byState: Record<SocketState, number>;
  /** Open sockets per stage. */
  byStage: Record<string, number>;
  /** Sockets closed so far, by reason. */
  closed: Record<string, number>;
  /** Connections refused at once, by limit. */
  refused: Record<string, number>;
  /** Open sockets with the most queued output bytes first (then bytes written). */
  top: SocketTalker[];
}

/** One ticket category of one ticket stage. */
export interface TicketCategoryInfo {
  stage: string;
  category: string;
  holders: number;
  waiting: number;
  /** How long the oldest waiting request has waited, ms. */
  oldestWaitMs: number;
  /** The category's limit, when the source knows it. */
  limit?: number;
}

/**
 * Everything the admin app reads and acts through. Results are plain data;
 * a method throws (or rejects) to report a failure, and the app maps the
 * error's `name` to a status (`RequestTimeoutError` → 504,
 * `AdminUnavailableError` → 501, …).
 */
export interface AdminSources {
  health(): Awaitable<Health>;
  /** Every metric in the Prometheus text format. */
  metricsText(): Awaitable<string>;
  /** Every metric as plain data (`GET /metrics.json`: what a supervisor aggregates). */
  metricsSnapshot?(): Awaitable<MetricsSnapshot>;
  stages(): Awaitable<StageInfo[]>;
  sockets(): Awaitable<SocketsReport>;
  tickets(): Awaitable<TicketCategoryInfo[]>;
  routes(): Awaitable<JsonValue>;
  workers(): Awaitable<JsonValue>;
  /** Sends `values` to `target` and resolves with the reply (rejects with its error). */
  signal(target: string, values: unknown[], timeoutMs: number): Promise<unknown>;
  /** Reloads the scripts now; resolves with what the reload reports. */
  reload(): Promise<JsonValue | void>;
  /** Starts draining (stop taking new work, finish queued, exit); resolves once it started. */
  drain(): Promise<JsonValue | void>;
}

/** A source method has nothing behind it (not wired in this process). */
export class AdminUnavailableError extends Error {
  override name = "AdminUnavailableError";
}

/** The callbacks and settings {@link processSources} takes beyond the process. */
export interface ProcessSourceOptions {
  /** The clock the stages' schedulers use (for message ages; default: the system clock). */
  clock?: Clock;
  /** How many sockets `/sockets` lists as top talkers (default 10). */
  topSockets?: number;
  /** Constant labels of every metric (such as `{ process: "0" }`). */
  constLabels?: Record<string, string>;
  /** True while the process drains (health: `"draining"`). */
  draining?: () => boolean;
  /** True until the process has started (health: `"starting"`). */
  starting?: () => boolean;
  /** Replaces the ticket figures read from the metrics (e.g. `ticket:#` requests). */
  tickets?: () => Awaitable<TicketCategoryInfo[]>;
  routes?: () => Awaitable<JsonValue>;
  workers?: () => Awaitable<JsonValue>;
  signal?: (target: string, values: unknown[], timeoutMs: number) => Promise<unknown>;
  reload?: () => Promise<JsonValue | void>;
  drain?: () => Promise<JsonValue | void>;
}

const DEFAULT_TOP_SOCKETS = 10;

function unavailable(what: string): AdminUnavailableError {
  return new AdminUnavailableError(`The admin source "${what}" is not wired in this process`);
}

function stateOf(socket: { pendingFrames: number; queuedOutBytes: number }): SocketState {
  if (socket.queuedOutBytes > 0) return "writing";
  return socket.pendingFrames > 0 ? "busy" : "idle";
}

function addCounts(into: Record<string, number>, from: ReadonlyMap<string, number>): void {
  for (const [key, value] of from) into[key] = (into[key] ?? 0) + value;
}

/** A {@link SocketsReport} with nothing in it, to add to. */
export function emptySocketsReport(): SocketsReport {
  return {
    open: 0,
    byState: { writing: 0, busy: 0, idle: 0 },
    byStage: {},
    closed: {},
    refused: {},
    top: [],
  };
}

/**
 * Ticket figures from the ticket stages' gauges (`stage_ticket_holders`,
 * `stage_ticket_waiting`, `stage_ticket_oldest_wait_seconds`).
 */
export function ticketsFromMetrics(snapshot: MetricsSnapshot): TicketCategoryInfo[] {
  const found = new Map<string, TicketCategoryInfo>();
  const fields = {
    stage_ticket_holders: (info: TicketCategoryInfo, v: number) => info.holders = v,
    stage_ticket_waiting: (info: TicketCategoryInfo, v: number) => info.waiting = v,
    stage_ticket_oldest_wait_seconds: (info: TicketCategoryInfo, v: number) =>
      info.oldestWaitMs = Math.round(v * 1000),
  };
  for (const family of snapshot) {
    if (family.type === "histogram" || !Object.hasOwn(fields, family.name)) continue;
    const set = fields[family.name as keyof typeof fields];
    for (const { labels, value } of family.samples) {
      const stage = labels.stage ?? "";
      const category = labels.category ?? "";
      const key = `${stage.length}:${stage}${category}`;
      let info = found.get(key);
      if (info === undefined) {
        info = { stage, category, holders: 0, waiting: 0, oldestWaitMs: 0 };
        found.set(key, info);
      }
      set(info, value);
    }
  }
  return [...found.values()].sort((a, b) =>
    a.stage === b.stage ? a.category.localeCompare(b.category) : a.stage.localeCompare(b.stage)
  );
}

/**
 * Admin sources of a running process: health from its flow monitor, metrics
 * from its registry, stages, services and sockets from the stages themselves,
 * tickets from the ticket gauges, workers, routes, signal and reload from
 * the process itself — each replaceable through `options` — and drain from
 * `options` ({@link AdminUnavailableError} when absent: only the command
 * running the process can end it).
 *
 * @example
 * ```ts ignore
 * const sources = processSources(running, { draining: () => draining });
 * const app = adminApp(sources, { token: config.admin.token });
 * ```
 */
export function processSources(
  running: RunningProcess,
  options: ProcessSourceOptions = {},
): AdminSources {
  const clock = options.clock ?? systemClock;
  const top = options.topSockets ?? DEFAULT_TOP_SOCKETS;
  if (!Number.isInteger(top) || top < 0) {
    throw new RangeError(`processSources: topSockets must be an integer >= 0; got ${top}`);
  }
  return {
    health() {
      const state: HealthState = options.draining?.()
        ? "draining"
        : options.starting?.()
        ? "starting"
        : running.monitor.overloaded
        ? "overloaded"
        : "ready";
      return { live: true, ready: state === "ready", state };
    },
    metricsText() {
      return renderPrometheus(running.metrics.snapshot(), options.constLabels);
    },
    metricsSnapshot() {
      return running.metrics.snapshot();
    },
    stages() {
      const now = clock.wallNow();
      const list: StageInfo[] = [];
      const peers = running.routes().peers;
      const instances = (id: string) => 1 + peers.filter((peer) => peer.stages.includes(id)).length;
      for (const stage of running.stages.values()) {
        const scheduler = stage.scheduler;
        const oldest = scheduler.oldestQueuedAt();
        const size = stage.pool.size;
        const inFlight = Array.from({ length: size }, (_, w) => scheduler.inFlight(w));
        let busy = 0;
        for (let w = 0; w < size; w++) if (stage.pool.control(w)?.snapshot().running) busy++;
        list.push({
          id: stage.id,
          kind: "script",
          state: stage.state,
          instances: instances(stage.id),
          queueDepth: scheduler.queued,
          inFlight: scheduler.inFlightTotal,
          oldestQueuedMs: oldest === undefined ? 0 : Math.max(0, now - oldest),
          sockets: stage.broker.socketCount,
          workers: { total: size, busy, inFlight },
        });
      }
      for (const service of running.services.values()) {
        list.push({
          id: service.id,
          kind: service.kind,
          state: service.state,
          instances: instances(service.id),
          queueDepth: service.queued,
        });
      }
      return list;
    },
    sockets() {
      const report = emptySocketsReport();
      const all: SocketTalker[] = [];
      for (const stage of running.stages.values()) {
        const broker = stage.broker;
        const sockets = broker.sockets();
        report.byStage[stage.id] = sockets.length;
        report.open += sockets.length;
        addCounts(report.closed, broker.closedByReason);
        addCounts(report.refused, broker.refusedByReason);
        for (const socket of sockets) {
          const state = stateOf(socket);
          report.byState[state]++;
          all.push({ stage: stage.id, ...socket, home: socket.home ?? null, state });
        }
      }
      all.sort((a, b) => b.queuedOutBytes - a.queuedOutBytes || b.bytesOut - a.bytesOut);
      report.top = all.slice(0, top);
      return report;
    },
    tickets() {
      return options.tickets?.() ?? ticketsFromMetrics(running.metrics.snapshot());
    },
    routes() {
      return options.routes?.() ?? (running.routes() as unknown as JsonValue);
    },
    workers() {
      return options.workers?.() ?? (running.workers() as unknown as JsonValue);
    },
    signal(target, values, timeoutMs) {
      return options.signal?.(target, values, timeoutMs) ??
        running.caller.request(target, values, timeoutMs);
    },
    async reload() {
      if (options.reload !== undefined) return await options.reload();
      return { stages: (await running.reload()) as unknown as JsonValue };
    },
    drain() {
      if (options.drain === undefined) return Promise.reject(unavailable("drain"));
      return options.drain();
    },
  };
}
