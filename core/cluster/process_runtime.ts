/**
 * One Stage process: starts the stages of its process groups from the config
 * and stops them gracefully.
 *
 * Either every `#startup` group runs here on an in-process bus (`stage run
 * --single`), or one group does as a child of the supervisor, joined to its
 * local bus hub (and to NATS with `#cluster`): `options.hub`.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { StageConfig } from "../config/mod.ts";
import type { LogOptions } from "../log/mod.ts";
import { denoTransport, type Transport } from "../net/transport.ts";
import { denoWorkerFactory, type WorkerFactory } from "../pool/worker_handle.ts";
import type { BrokerLimits } from "../net/broker_service.ts";
import { brokerLimitsFromFlow } from "../net/broker_limits.ts";
import { MetricsRegistry } from "../metrics/mod.ts";
import { FlowMonitor } from "./flow_monitor.ts";
import { FlowGate, PendingBound } from "../net/flow_gate.ts";
import { ConnectionQuota } from "../net/connection_quota.ts";
import { type Clock, systemClock } from "../time/mod.ts";
import { SharedTable } from "../ring/shared_table.ts";
import { type Bus, type BusView, LocalBus } from "./local_bus.ts";
import { ProcessBus, type ProcessBusOptions } from "./process_bus.ts";
import type { EndpointLoad } from "./bus_frames.ts";
import { NatsLink } from "./nats_link.ts";
import { OnceRegistry } from "./once_registry.ts";
import { ScriptStage, type StageReload, StageStartError, type WorkerInfo } from "./script_stage.ts";
import { MainCaller, serviceFactories, ServiceStage, type StageCaller } from "../services/mod.ts";

/** The NATS side of a supervised process's bus, when `#cluster.nats` names servers. */
async function natsOf(
  config: StageConfig,
  hub: { endpoint: string },
  log: Logger,
  clock: Clock,
): Promise<{ nats?: NonNullable<ProcessBusOptions["nats"]> }> {
  const cluster = config.cluster;
  if (cluster === undefined || cluster.nats.length === 0) return {};
  const link = await NatsLink.connect({
    servers: cluster.nats,
    name: hub.endpoint,
    ...(cluster.auth === undefined ? {} : { auth: cluster.auth }),
    log,
    clock,
  });
  // Code from other machines only over an authenticated cluster (DESIGN.md §4).
  const allowRemoteCode = cluster.allowRemoteCode && cluster.auth !== undefined;
  if (cluster.allowRemoteCode && !allowRemoteCode) {
    log.warning("#cluster.allowRemoteCode is ignored: the cluster has no #cluster.auth");
  }
  let backup: NatsLink | undefined;
  try {
    backup = cluster.backup.length === 0 ? undefined : await NatsLink.connect({
      servers: cluster.backup,
      name: `${hub.endpoint} (backup)`,
      ...(cluster.auth === undefined ? {} : { auth: cluster.auth }),
      log,
      clock,
    });
  } catch (error) {
    await link.close();
    throw error;
  }
  return {
    nats: { link, clock, allowRemoteCode, ...(backup === undefined ? {} : { backup }) },
  };
}

/** Options of {@link startProcess}. */
export interface ProcessOptions {
  /** Which `#startup` groups to run here (default: all of them). */
  groups?: number[];
  /** Force the transpile + `data:` URL import path (what a compiled binary uses). */
  transpile: boolean;
  /** Arguments after `--` on the command line (`process.args`). */
  args: string[];
  logOptions: LogOptions;
  log: Logger;
  /** Data bytes per ring buffer (default 1 MiB). */
  ringCapacity?: number;
  /** Overrides `#threads[0]`. */
  workers?: number;
  clock?: Clock;
  transport?: Transport;
  /** Overrides the worker factory (tests). */
  factory?: WorkerFactory;
  limits?: Partial<BrokerLimits>;
  /** The process's metrics registry (default: a new one). */
  metrics?: MetricsRegistry;
  /**
   * Join the local bus of a supervisor's hub (this process is one of several);
   * absent, the process is alone and its bus is in-process.
   */
  hub?: { path: string; node: string; endpoint: string };
}

/** A running process. */
export interface RunningProcess {
  readonly stages: ReadonlyMap<string, ScriptStage>;
  /** The service stages (ticket, route, index, agent) of this process, by id. */
  readonly services: ReadonlyMap<string, ServiceStage>;
  /** Every counter, gauge and histogram of the process. */
  readonly metrics: MetricsRegistry;
  /** Dispatch delay, overload state. */
  readonly monitor: FlowMonitor;
  /** Sends stage messages from the main thread (the admin API, the HTTP gateway). */
  readonly caller: StageCaller;
  /** Every script stage's workers: what each runs now, yields, replacements. */
  workers(): WorkerInfo[];
  /** The bus's routing view: this process's endpoint, stages and state, and its peers. */
  routes(): BusView;
  /**
   * Reloads every script stage (see {@link ScriptStage.reload}), one stage after
   * another; a stage whose script does not load rejects, leaving it as it was.
   */
  reload(graceMs?: number): Promise<StageReload[]>;
  /** Tells the other processes of this machine where this one's admin API listens. */
  announceAdmin(address: string): void;
  /** Stops every stage gracefully (bounded by `graceMs` per stage). */
  stop(graceMs?: number): Promise<void>;
}

const DEFAULT_RING_CAPACITY = 1 << 20;

/**
 * Starts the script stages of the chosen process groups. If any stage fails
 * to start, the ones already started are stopped and the error is thrown.
 */
export async function startProcess(
  config: StageConfig,
  options: ProcessOptions,
): Promise<RunningProcess> {
  const log = options.log;
  const clock = options.clock ?? systemClock;
  const once = new OnceRegistry();
  // The heartbeats' load figures; the stages and the monitor exist only further down.
  let load = (): EndpointLoad => ({ p95Ms: 0, queued: 0 });
  const bus: Bus = options.hub === undefined ? new LocalBus(log, clock) : await ProcessBus.connect({
    ...options.hub,
    log,
    ...await natsOf(config, options.hub, log, clock),
    load: () => load(),
  });
  if (options.hub === undefined && (config.cluster?.nats.length ?? 0) > 0) {
    log.warning(
      "#cluster is set but this process runs alone (--single): it does not join the cluster",
    );
  }
  const shared = SharedTable.create(config.script.shared);
  const stages = new Map<string, ScriptStage>();
  const services = new Map<string, ServiceStage>();
  const groups = options.groups ?? config.startup.map((_, index) => index);
  const metrics = options.metrics ?? new MetricsRegistry({
    onCollectError: (name, error) => log.error("Metric {name} failed: {error}", { name, error }),
  });
  const gate = new FlowGate(config.flow.readBytes);
  const pending = new PendingBound(config.threads.maxPending, gate);
  const quota = new ConnectionQuota({
    maxConnections: options.limits?.maxConnections ?? config.flow.maxConnections,
    maxPerIp: options.limits?.maxPerIp ?? config.flow.maxPerIp,
  });
  const monitor = new FlowMonitor({
    metrics,
    clock,
    log,
    ...(config.router === undefined ? {} : { router: config.router }),
    effects: {
      apply(overloaded) {
        bus.detached = overloaded;
        // Smaller read budgets while overloaded: sockets still progress, more slowly.
        gate.readBytes = overloaded
          ? Math.max(1024, config.flow.readBytes >> 4)
          : config.flow.readBytes;
      },
      admit(rate) {
        for (const stage of stages.values()) stage.broker.setAdmissionRate(rate);
      },
    },
  });
  load = () => ({
    p95Ms: monitor.p95Ms,
    queued: [...stages.values()].reduce((sum, stage) => sum + stage.scheduler.queued, 0) +
      [...services.values()].reduce((sum, service) => sum + service.queued, 0),
  });
  const limits = { ...brokerLimitsFromFlow(config.flow), ...options.limits };
  const caller = new MainCaller(bus, log);
  bus.join(caller);
  const stop = async (graceMs = 5000) => {
    bus.drain?.();
    await Promise.all([...stages.values()].reverse().map((stage) => stage.stop(graceMs)));
    // Services last: script stages finishing their work may still need them.
    await Promise.all([...services.values()].reverse().map((service) => service.stop()));
    monitor[Symbol.dispose]();
    bus.close();
  };
  // Service stages first, so scripts can reach them from their first line.
  for (const groupIndex of groups) {
    for (const ref of config.startup[groupIndex] ?? []) {
      if (ref.kind === "script" || services.has(ref.id)) continue;
      const service = new ServiceStage({
        id: ref.id,
        kind: ref.kind,
        bus,
        clock,
        log,
        metrics,
        config,
        start: serviceFactories[ref.kind],
      });
      services.set(ref.id, service);
      monitor.watchService(service, metrics);
      bus.join(service);
      try {
        await service.start();
      } catch (error) {
        services.delete(ref.id);
        bus.leave(ref.id);
        await stop(1000);
        throw new StageStartError(
          `Service stage ${ref.kind}+${ref.id} failed to start: ${
            error instanceof Error ? error.message : error
          }`,
          { cause: error },
        );
      }
    }
  }
  for (const groupIndex of groups) {
    for (const ref of config.startup[groupIndex] ?? []) {
      if (ref.kind !== "script") continue;
      if (stages.has(ref.id) || services.has(ref.id)) continue; // one instance per id per process
      const main = config.script.mains[ref.id] ?? ref.id;
      const stage = new ScriptStage({
        stageId: ref.id,
        workers: options.workers ?? config.threads.workers,
        ringCapacity: options.ringCapacity ?? DEFAULT_RING_CAPACITY,
        script: {
          packages: config.script.packages,
          ...(config.script.preload === undefined ? {} : { preload: config.script.preload }),
          main,
          reloadSeconds: config.script.reloadSeconds,
          transpile: options.transpile,
        },
        process: {
          id: groupIndex,
          pid: Deno.pid,
          title: `stage[${groupIndex}]`,
          args: options.args,
          config: (config.raw ?? {}) as Record<string, unknown>,
          baseDir: config.baseDir,
        },
        logOptions: options.logOptions,
        factory: options.factory ?? denoWorkerFactory(config.script.permissions),
        transport: options.transport ?? denoTransport,
        once,
        shared: shared.buffer,
        bus,
        clock,
        log,
        limits,
        watchdog: { sliceMs: config.flow.sliceMs, hardLimitMs: config.flow.hardLimitMs },
        monitor,
        gate,
        pending,
        quota,
        sharedAddresses: config.services.tcp,
      });
      stages.set(ref.id, stage);
      monitor.watch(stage, metrics, clock);
      bus.join(stage);
      try {
        await stage.start();
      } catch (error) {
        stages.delete(ref.id);
        await stop(1000);
        throw error;
      }
    }
  }
  bus.ready?.();
  return {
    stages,
    services,
    metrics,
    monitor,
    caller,
    stop,
    workers: () => [...stages.values()].flatMap((stage) => stage.workers()),
    routes: () => bus.view(),
    async reload(graceMs) {
      const reports: StageReload[] = [];
      for (const stage of stages.values()) reports.push(await stage.reload(graceMs));
      return reports;
    },
    announceAdmin(address) {
      if (bus instanceof ProcessBus) bus.admin = address;
    },
  };
}
