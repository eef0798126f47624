/**
 * `stage run`: load the config, start the stages, run until SIGINT/SIGTERM,
 * stop gracefully.
 *
 * Three modes: every `#startup` group in this process (`--single`, the default
 * for now); a supervisor of one child process per group (`--supervise`); and a
 * child running one group (`--group <n>`, what the supervisor starts).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { ConfigError, loadConfig, type StageConfig } from "../config/mod.ts";
import {
  BUS_ENV,
  BusHub,
  currentRuntime,
  DenoChildLauncher,
  selfCommand,
  setProcessTitle,
  startProcess,
  SUPERVISED_ENV,
  Supervisor,
  untilStdinCloses,
} from "../cluster/mod.ts";
import { coreLogger, defaultLogOptions, setupLogging } from "../log/mod.ts";
import {
  type AdminServer,
  type ChildProcess,
  launchAdmin,
  launchProcessAdmin,
  processSources,
  startGateway,
  supervisorSources,
} from "../admin/mod.ts";
import { isCompiledBinary } from "../script/mod.ts";
import { systemClock } from "../time/mod.ts";
import type { CliCommand } from "./cli_args.ts";
import type { CliIo } from "./cli_io.ts";

/** Exit codes of `stage`. */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2 } as const;

/**
 * How long the supervisor waits for its children to stop after SIGTERM before
 * it kills them: above a child's own per-stage grace (5 s), so a draining
 * child is not cut short.
 */
export const SUPERVISOR_GRACE_MS = 10_000;

type RunCli = Extract<CliCommand, { command: "run" }>;

/**
 * Loads and validates the config; a bad config is reported on standard error
 * as one line naming the key path, the expectation and the found value.
 */
export async function loadConfigOrReport(
  path: string,
  io: CliIo,
): Promise<StageConfig | undefined> {
  try {
    return await loadConfig(path, io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`stage: invalid config: ${error.message}`);
      return undefined;
    }
    if (error instanceof Deno.errors.NotFound) {
      io.err(`stage: config file not found: ${path}`);
      return undefined;
    }
    throw error;
  }
}

/** Runs `stage run`; resolves with the exit code. */
export async function runCommand(cli: RunCli, io: CliIo): Promise<number> {
  const logOptions = defaultLogOptions(io.env);
  const resolved = {
    ...logOptions,
    format: logOptions.format === "auto" ? (io.isTerminal ? "pretty" : "json") : logOptions.format,
  } as const;
  setupLogging(resolved, io.isTerminal);
  const group = cli.group;
  const log = group === undefined
    ? coreLogger("cluster")
    : coreLogger("cluster").with({ group, pid: Deno.pid });
  // Listen for signals before anything starts, so an early Ctrl-C still stops gracefully.
  let stopRequested = io.shutdownSignal();
  if (group !== undefined && io.env(SUPERVISED_ENV) === "1") {
    // The orphan rule: the supervisor's end of our stdin closes when it dies.
    const orphaned = untilStdinCloses().then(() => "stdin closed (the supervisor is gone)");
    stopRequested = Promise.race([stopRequested, orphaned]);
  }
  const config = await loadConfigOrReport(cli.config, io);
  if (config === undefined) return ExitCode.Usage;
  if (group !== undefined && group >= config.startup.length) {
    io.err(
      `stage: --group ${group} is not a #startup group of ${config.configPath}: ` +
        `it has ${config.startup.length} group(s)` +
        (config.startup.length === 0 ? "" : ` (0..${config.startup.length - 1})`),
    );
    return ExitCode.Usage;
  }
  if (cli.supervise) return await supervise(cli, config, log, stopRequested);
  const transpile = cli.transpile || isCompiledBinary();
  if (group === undefined) {
    log.info("Stage starting: config {config}, {groups} process group(s), scripts {mode}", {
      config: config.configPath,
      groups: config.startup.length,
      mode: transpile ? "transpiled" : "imported natively",
    });
  } else {
    setProcessTitle(`stage[${group}]`);
    log.info("Stage starting: config {config}, group {group} ({stages}), scripts {mode}", {
      config: config.configPath,
      stages: describeGroup(config, group),
      mode: transpile ? "transpiled" : "imported natively",
    });
  }
  let running;
  try {
    running = await startProcess(config, {
      ...(group === undefined ? {} : { groups: [group] }),
      ...hubOf(config, group, io),
      transpile,
      args: cli.args,
      logOptions: resolved,
      log,
      ...(cli.workers === undefined ? {} : { workers: cli.workers }),
    });
  } catch (error) {
    log.fatal("Stage failed to start: {reason}", { reason: reasonOf(error), error });
    return ExitCode.Failure;
  }
  // The admin API: this process's own (a supervised child's on a private port).
  let draining = false;
  let drainRequested!: (why: string) => void;
  const drained = new Promise<string>((resolve) => drainRequested = resolve);
  let admin: AdminServer | undefined;
  let gateway: AdminServer | undefined;
  try {
    admin = launchProcessAdmin(running, config.admin, {
      log,
      explicit: hasSection(config, "#admin"),
      private: group !== undefined && io.env(BUS_ENV) !== undefined,
      draining: () => draining,
      drain() {
        draining = true;
        drainRequested("an admin drain request");
        return Promise.resolve({ pid: Deno.pid });
      },
    });
    // The public HTTP gateway: every process serves it (the port is shared, SO_REUSEPORT).
    if (config.gateway !== undefined) {
      const health = processSources(running, { draining: () => draining }).health;
      gateway = await startGateway(config.gateway, running.caller, { log, health });
    }
  } catch (error) {
    log.fatal("Stage failed to start: {reason}", { reason: reasonOf(error), error });
    await admin?.shutdown();
    await running.stop(1000);
    return ExitCode.Failure;
  }
  log.info("Stage running (pid {pid}); stop with Ctrl-C or SIGTERM", { pid: Deno.pid });
  const signal = await Promise.race([stopRequested, drained]);
  draining = true;
  log.info("Stage stopping on {signal}", { signal });
  // New gateway requests get 503 from here; those in progress finish while the stages drain.
  await Promise.all([running.stop(), gateway?.shutdown()]);
  await admin?.shutdown();
  log.info("Stage stopped");
  return ExitCode.Ok;
}

/** Whether the config file itself has a section (not only its defaults). */
function hasSection(config: StageConfig, key: string): boolean {
  const raw = config.raw as Record<string, unknown> | undefined;
  return raw !== undefined && raw[key] !== undefined;
}

/** The reason in the message itself: JSON lines show some Error objects as "{}". */
function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** `stage run --supervise`: one child per group until SIGINT/SIGTERM, then stop them. */
async function supervise(
  cli: RunCli,
  config: StageConfig,
  log: Logger,
  stopRequested: Promise<string>,
): Promise<number> {
  // The local bus: the children of this machine reach each other through its hub;
  // a child says through it when its stages are up.
  const started: { supervisor?: Supervisor } = {};
  const hub = await BusHub.start({
    clock: systemClock,
    log,
    onReady(endpoint) {
      const group = Number(endpoint.slice(endpoint.lastIndexOf("/") + 1));
      log.info("Process group {group} is ready", { group });
      started.supervisor?.ready(group);
    },
  });
  const launcher = new DenoChildLauncher(selfCommand(currentRuntime(isCompiledBinary())), {
    config: config.configPath,
    transpile: cli.transpile,
    args: cli.args,
    ...(cli.workers === undefined ? {} : { workers: cli.workers }),
  }, { [BUS_ENV]: hub.path });
  log.info("Stage supervisor starting: config {config}, {groups} process group(s), bus {bus}", {
    config: config.configPath,
    groups: config.startup.length,
    bus: hub.path,
  });
  // A group that cannot start (a config or script error, an address in use) stops them all.
  let exitCode: number = ExitCode.Ok;
  let fatal!: (why: string) => void;
  const failed = new Promise<string>((resolve) => fatal = resolve);
  const supervisor = started.supervisor = new Supervisor({
    groups: config.startup.map((_, index) => index),
    launcher,
    clock: systemClock,
    log,
    describe: (group) => describeGroup(config, group),
    onFatal(group, exit) {
      exitCode = exit.code === ExitCode.Usage ? ExitCode.Usage : ExitCode.Failure;
      fatal(`process group ${group} could not start`);
    },
  });
  supervisor.start();
  // One admin API for every process of the deployment on this machine.
  let draining = false;
  let drainRequested!: (why: string) => void;
  const drained = new Promise<string>((resolve) => drainRequested = resolve);
  let admin;
  try {
    admin = launchAdmin(
      supervisorSources({
        children: () => childProcesses(supervisor, hub),
        ...(config.admin.token === undefined ? {} : { token: config.admin.token }),
        draining: () => draining,
        drain() {
          draining = true;
          drainRequested("an admin drain request");
          return Promise.resolve({ pid: Deno.pid });
        },
      }),
      config.admin,
      { log, explicit: hasSection(config, "#admin") },
    );
  } catch (error) {
    log.fatal("Stage failed to start: {reason}", { reason: reasonOf(error), error });
    fatal("the admin API could not be served");
    exitCode = ExitCode.Failure;
  }
  log.info("Stage supervisor running (pid {pid}); stop with Ctrl-C or SIGTERM", {
    pid: Deno.pid,
  });
  const signal = await Promise.race([stopRequested, failed, drained]);
  draining = true;
  log.info("Stage stopping on {signal}", { signal });
  await supervisor.stop(SUPERVISOR_GRACE_MS);
  await admin?.shutdown();
  await hub.close();
  log.info("Stage stopped");
  return exitCode;
}

/** The supervisor's children with what the bus knows of them (state, admin address). */
function childProcesses(supervisor: Supervisor, hub: BusHub): ChildProcess[] {
  const members = new Map(
    hub.members.map((
      info,
    ) => [Number(info.endpoint.slice(info.endpoint.lastIndexOf("/") + 1)), info]),
  );
  return supervisor.children.map((child) => {
    const info = members.get(child.group);
    return {
      group: child.group,
      state: child.state,
      starts: child.starts,
      ...(child.pid === undefined ? {} : { pid: child.pid }),
      ...(info === undefined ? {} : { busState: info.state }),
      ...(info?.admin === undefined ? {} : { admin: info.admin }),
    };
  });
}

/** A supervised child joins its supervisor's local bus (named by {@link BUS_ENV}). */
function hubOf(
  config: StageConfig,
  group: number | undefined,
  io: CliIo,
): { hub?: { path: string; node: string; endpoint: string } } {
  const path = io.env(BUS_ENV);
  if (group === undefined || path === undefined || path === "") return {};
  const node = config.cluster?.node ?? Deno.hostname();
  return { hub: { path, node, endpoint: `${node}/${group}` } };
}

/** `"script+game, =ticket+ticket"`: the stages of one group, for log lines. */
function describeGroup(config: StageConfig, group: number): string {
  return (config.startup[group] ?? []).map((ref) => `${ref.kind}+${ref.id}`).join(", ");
}
