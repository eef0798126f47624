/**
 * The cluster benchmark's Stage subprocesses: a deployment folder written for the
 * run, started as `stage run --supervise` (one child per `#startup` group, the local
 * bus between them) or `stage run --single` (every group in one process), ready once
 * each process has started its stages, and gone without a trace when stopped.
 *
 * @module
 */
import { dirname } from "node:path";
import { writeDeployment } from "../_helpers/stage_process.ts";
import { ServerProcess } from "./_flow_process.ts";

const REPO_ROOT = new URL("../../", import.meta.url);
const READY_TIMEOUT_MS = 60_000;
/**
 * How long a stop may take before stragglers are killed: ServerProcess SIGKILLs
 * the supervisor after 5 s, and its children then exit when their stdin closes.
 */
const STRAGGLER_WAIT_MS = 8_000;
/** What every Stage process logs once all its stages run (not the supervisor's own line). */
const RUNNING = "Stage running (pid";
/**
 * Set on the deployment's process and so inherited by a supervisor's children: finds
 * them in `/proc` (their command line reads `stage[n]` once they set their title).
 */
const MARKER_ENV = "STAGE_BENCH_CLUSTER";
/** Where a supervisor tells its children the bus hub's socket is. */
const BUS_ENV = "STAGE_BUS";

/** How to start one Stage deployment. */
export interface ClusterOptions {
  /** Names the process in errors. */
  name: string;
  /** The stage.json content. */
  config: Record<string, unknown>;
  /** Scripts by file name in `scripts/`. */
  scripts: Record<string, string>;
  /** `supervise`: one child per `#startup` group; `single`: all groups in one process. */
  mode: "supervise" | "single";
  /** The port the driver connects to (for errors; the scripts get it in `args`). */
  port: number;
  /** Script arguments (`process.args`). */
  args: string[];
}

/** A running deployment; {@link StageCluster.stop} ends every process it started. */
export class StageCluster implements AsyncDisposable {
  /** The `stage run` process (the supervisor, when supervised). */
  readonly server: ServerProcess;
  readonly #marker: string;
  /** The hub's folder: a supervisor removes it on a graceful stop, not when SIGKILLed. */
  #hub: string | undefined;
  #stopped: Promise<Deno.CommandStatus> | undefined;

  constructor(server: ServerProcess, marker: string) {
    this.server = server;
    this.#marker = marker;
  }

  /**
   * SIGTERM (a supervisor stops its children first, SIGKILL after 5 s); any process
   * of the run still alive after {@link STRAGGLER_WAIT_MS}, or once the rest is
   * gone, is SIGKILLed (a child that outlives its supervisor holds the output pipe
   * open, so the stop would not end otherwise); then the deployment folder goes, and
   * the bus hub's folder too when a SIGKILLed supervisor left it behind.
   */
  stop(): Promise<Deno.CommandStatus> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #stop(): Promise<Deno.CommandStatus> {
    const stopping = this.server.stop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), STRAGGLER_WAIT_MS);
    });
    if (await Promise.race([stopping, late]) === "late") await killMarked(this.#marker);
    clearTimeout(timer);
    const status = await stopping;
    await killMarked(this.#marker);
    if (this.#hub !== undefined) {
      await Deno.remove(this.#hub, { recursive: true }).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
    await Deno.remove(this.#marker, { recursive: true });
    return status;
  }

  /** Notes the bus hub's folder (once the children have started). */
  async findHub(): Promise<void> {
    this.#hub = await hubFolder(this.#marker);
  }
}

/**
 * Starts a deployment and resolves once every Stage process it runs (one per
 * group when supervised) logged that its stages run.
 */
export async function startCluster(options: ClusterOptions): Promise<StageCluster> {
  const { dir, config } = await writeDeployment(options.config, options.scripts);
  const groups = (options.config["#startup"] as unknown[]).length;
  const server = new ServerProcess(
    options.name,
    options.port,
    [
      "run",
      "-A",
      "--unstable-worker-options",
      "--unstable-net",
      new URL("main.ts", REPO_ROOT).pathname,
      "run",
      `--${options.mode}`,
      "--config",
      config,
      "--",
      ...options.args,
    ],
    { STAGE_LOG_FORMAT: "json", STAGE_LOG_LEVEL: "info", [MARKER_ENV]: dir },
    {},
  );
  const cluster = new StageCluster(server, dir);
  try {
    await server.ready(RUNNING, READY_TIMEOUT_MS, options.mode === "supervise" ? groups : 1);
    await cluster.findHub();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** The processes whose environment carries `MARKER_ENV=marker`, with that environment. */
async function marked(marker: string): Promise<{ pid: number; env: string[] }[]> {
  const wanted = `${MARKER_ENV}=${marker}`;
  const found: { pid: number; env: string[] }[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const env = (await Deno.readTextFile(`/proc/${entry.name}/environ`)).split("\0");
      if (env.includes(wanted)) found.push({ pid: Number(entry.name), env });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/**
 * SIGKILLs every process of the run. The marker is a fresh temporary folder, so
 * no other process matches, whatever pids were reused.
 */
async function killMarked(marker: string): Promise<void> {
  for (const { pid } of await marked(marker)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
  }
}

/** The folder of the bus hub the run's children joined (`STAGE_BUS`), if any. */
async function hubFolder(marker: string): Promise<string | undefined> {
  for (const { env } of await marked(marker)) {
    const bus = env.find((entry) => entry.startsWith(`${BUS_ENV}=`));
    if (bus !== undefined) return dirname(bus.slice(BUS_ENV.length + 1));
  }
  return undefined;
}
