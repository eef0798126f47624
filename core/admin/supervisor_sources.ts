/**
 * The admin sources of a supervisor: one API for every process of this
 * machine's deployment. Each supervised child serves its own admin API on a
 * private loopback port (announced on the local bus); the supervisor's
 * {@link AdminSources} ask every child and merge the answers, each item or
 * series tagged with its process group (`process`).
 *
 * @module
 */
import {
  mergeSnapshots,
  MetricsRegistry,
  type MetricsSnapshot,
  renderPrometheus,
} from "../metrics/mod.ts";
import {
  type AdminSources,
  emptySocketsReport,
  type Health,
  type HealthState,
  type JsonValue,
  type SocketsReport,
  type SocketTalker,
  type StageInfo,
  type TicketCategoryInfo,
} from "./admin_sources.ts";

/** A supervised process as the supervisor knows it. */
export interface ChildProcess {
  group: number;
  /** `running` | `backoff` | `stopping` | `stopped` (the supervisor's view). */
  state: string;
  /** Its routing state on the bus, once it joined (`starting`, `ready`, …). */
  busState?: string;
  pid?: number;
  /** How many times the group's process has been started. */
  starts: number;
  /** `127.0.0.1:port` of its own admin API, once announced. */
  admin?: string;
}

/** Options of {@link supervisorSources}. */
export interface SupervisorSourceOptions {
  /** The processes now (supervisor state merged with the bus membership). */
  children(): ChildProcess[];
  /** The children's admin token (the deployment's `#admin.token`). */
  token?: string;
  /** How long one child may take to answer, ms (default 2000). */
  timeoutMs?: number;
  /** True while the deployment drains. */
  draining(): boolean;
  /** Stops the deployment gracefully (every child drains, then the supervisor exits). */
  drain(): Promise<JsonValue | void>;
  /** How many sockets `/sockets` lists as top talkers (default 10). */
  topSockets?: number;
  /** The HTTP client (tests). */
  fetch?: typeof fetch;
}

/** A child's admin API did not answer as expected. */
export class ChildAdminError extends Error {
  override name = "ChildAdminError";
}

/** How long one child's reload may take (every worker finishing its work, in turn). */
const RELOAD_WAIT_MS = 120_000;

type Reached<T> = { child: ChildProcess; value: T };

/**
 * Admin sources over the children of a supervisor. Read endpoints skip a
 * child that does not answer (its absence shows in `/health` and in
 * `stage_process_up`); `signal` goes to one ready child (the bus takes the
 * message anywhere from there); `reload` goes to every child.
 *
 * @example
 * ```ts ignore
 * const sources = supervisorSources({ children, token, draining: () => false, drain });
 * serveAdmin(adminApp(sources, { token }), { hostname: "127.0.0.1", port: 8800, token }, log);
 * ```
 */
export function supervisorSources(options: SupervisorSourceOptions): AdminSources {
  const timeoutMs = options.timeoutMs ?? 2000;
  const top = options.topSockets ?? 10;
  const http = options.fetch ?? fetch;
  const headers: Record<string, string> = options.token === undefined
    ? {}
    : { authorization: `Bearer ${options.token}` };

  async function call<T>(
    child: ChildProcess,
    path: string,
    body?: unknown,
    waitMs = timeoutMs,
  ): Promise<T> {
    if (child.admin === undefined) {
      throw new ChildAdminError(`Process group ${child.group} has no admin API yet`);
    }
    const response = await http(`http://${child.admin}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(waitMs),
    });
    const data = await response.json();
    if (!response.ok) {
      const error = (data as { error?: { name?: string; message?: string } }).error ?? {};
      throw Object.assign(
        new ChildAdminError(
          `Process group ${child.group}: ${path}: ${error.message ?? response.status}`,
        ),
        { name: error.name ?? "ChildAdminError" },
      );
    }
    return data as T;
  }

  /** Asks every child with an admin API; those that fail are left out. */
  async function every<T>(path: string): Promise<Reached<T>[]> {
    const children = options.children().filter((child) => child.admin !== undefined);
    const answers = await Promise.allSettled(children.map((child) => call<T>(child, path)));
    return answers.flatMap((answer, i) =>
      answer.status === "fulfilled" ? [{ child: children[i]!, value: answer.value }] : []
    );
  }

  const tag = <T extends object>(child: ChildProcess, item: T) => ({
    ...item,
    process: String(child.group),
  });

  return {
    health(): Health {
      const children = options.children();
      // A group is up once it is on the bus and its own admin API is known (until then this
      // API could not report it).
      const states = children.map((child) =>
        child.admin === undefined ? "starting" : child.busState ?? "starting"
      );
      const state: HealthState = options.draining()
        ? "draining"
        : states.some((s) => s === "starting" || s === "draining") ||
            children.some((child) => child.state !== "running")
        ? "starting"
        : states.includes("overloaded")
        ? "overloaded"
        : "ready";
      return {
        live: true,
        ready: state === "ready",
        state,
        processes: children.map((child) => ({
          process: String(child.group),
          state: child.busState ?? child.state,
        })),
      };
    },
    async metricsText() {
      return renderPrometheus(await this.metricsSnapshot!());
    },
    async metricsSnapshot(): Promise<MetricsSnapshot> {
      const reached = await every<MetricsSnapshot>("/metrics.json");
      const own = new MetricsRegistry();
      const up = own.gauge("stage_process_up", "1 while a process group answers", ["process"]);
      const starts = own.counter(
        "stage_process_starts_total",
        "Times the supervisor started a process group's process",
        ["process"],
      );
      for (const child of options.children()) {
        const labels = { process: String(child.group) };
        up.set(reached.some((r) => r.child.group === child.group) ? 1 : 0, labels);
        starts.inc(labels, child.starts);
      }
      return mergeSnapshots([
        { labels: {}, snapshot: own.snapshot() },
        ...reached.map(({ child, value }) => ({
          labels: { process: String(child.group) },
          snapshot: value,
        })),
      ]);
    },
    async stages() {
      const reached = await every<StageInfo[]>("/stages");
      return reached.flatMap(({ child, value }) => value.map((item) => tag(child, item)));
    },
    async sockets() {
      const reached = await every<SocketsReport>("/sockets");
      const report = emptySocketsReport();
      const talkers: SocketTalker[] = [];
      for (const { child, value } of reached) {
        report.open += value.open;
        for (const [state, n] of Object.entries(value.byState)) {
          report.byState[state as keyof SocketsReport["byState"]] += n;
        }
        for (const field of ["byStage", "closed", "refused"] as const) {
          for (const [key, n] of Object.entries(value[field])) {
            report[field][key] = (report[field][key] ?? 0) + n;
          }
        }
        for (const talker of value.top) talkers.push(tag(child, talker));
      }
      talkers.sort((a, b) => b.queuedOutBytes - a.queuedOutBytes || b.bytesOut - a.bytesOut);
      report.top = talkers.slice(0, top);
      return report;
    },
    async tickets() {
      const reached = await every<TicketCategoryInfo[]>("/tickets");
      return reached.flatMap(({ child, value }) => value.map((item) => tag(child, item)));
    },
    async routes() {
      const reached = await every<JsonValue>("/routes");
      return reached.map(({ child, value }) => ({ process: String(child.group), routes: value }));
    },
    async workers() {
      const reached = await every<JsonValue[]>("/workers");
      return reached.flatMap(({ child, value }) =>
        value.map((item) =>
          typeof item === "object" && item !== null && !Array.isArray(item)
            ? tag(child, item)
            : item
        )
      );
    },
    async signal(target, values, timeout) {
      const children = options.children().filter((child) => child.admin !== undefined);
      const child = children.find((c) => c.busState === "ready") ?? children[0];
      if (child === undefined) throw new ChildAdminError("No process group has started yet");
      const body = { target, values, timeout };
      const answer = await call<{ reply: unknown }>(child, "/signal", body, timeout + timeoutMs);
      return answer.reply;
    },
    async reload() {
      const results: JsonValue[] = [];
      const failures: string[] = [];
      for (const child of options.children()) {
        try {
          const answer = await call<{ result: JsonValue }>(child, "/reload", {}, RELOAD_WAIT_MS);
          results.push({ process: String(child.group), result: answer.result });
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
      }
      if (failures.length > 0) {
        throw new ChildAdminError(`Reload failed: ${failures.join("; ")}`);
      }
      return { processes: results };
    },
    drain() {
      return options.drain();
    },
  };
}
