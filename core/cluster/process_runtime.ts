/**
 * One Stage process: starts the stages of its process groups from the config
 * and stops them gracefully.
 *
 * Until the supervisor arrives (multi-process issue), every `#startup` group
 * runs in this one process — the embedded mode (`stage run --single`).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { StageConfig } from "../config/mod.ts";
import type { LogOptions } from "../log/mod.ts";
import { denoTransport, type Transport } from "../net/transport.ts";
import { denoWorkerFactory, type WorkerFactory } from "../pool/worker_handle.ts";
import type { BrokerLimits } from "../net/broker_service.ts";
import { type Clock, systemClock } from "../time/mod.ts";
import { SharedTable } from "../ring/shared_table.ts";
import { LocalBus } from "./local_bus.ts";
import { OnceRegistry } from "./once_registry.ts";
import { ScriptStage } from "./script_stage.ts";

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
}

/** A running process. */
export interface RunningProcess {
  readonly stages: ReadonlyMap<string, ScriptStage>;
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
  const bus = new LocalBus(log, clock);
  const shared = SharedTable.create(config.script.shared);
  const stages = new Map<string, ScriptStage>();
  const groups = options.groups ?? config.startup.map((_, index) => index);
  const stop = async (graceMs = 5000) => {
    await Promise.all([...stages.values()].reverse().map((stage) => stage.stop(graceMs)));
    bus.close();
  };
  for (const groupIndex of groups) {
    for (const ref of config.startup[groupIndex] ?? []) {
      if (ref.kind !== "script") {
        log.warning(
          "Stage {kind}+{id} is a service stage; service stages are not available in this version",
          { kind: ref.kind, id: ref.id },
        );
        continue;
      }
      if (stages.has(ref.id)) continue; // one instance per id per process
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
        },
        logOptions: options.logOptions,
        factory: options.factory ?? denoWorkerFactory(config.script.permissions),
        transport: options.transport ?? denoTransport,
        once,
        shared: shared.buffer,
        bus,
        clock,
        log,
        ...(options.limits === undefined ? {} : { limits: options.limits }),
      });
      stages.set(ref.id, stage);
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
  return { stages, stop };
}
