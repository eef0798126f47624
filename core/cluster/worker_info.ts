/**
 * What each worker of a script stage is doing now, as plain data for the
 * admin API: its state, the record it runs and for how long, its queue,
 * yields and replacements so far.
 *
 * @module
 */
import type { FairScheduler, ScheduledRecord } from "../pool/fair_scheduler.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import type { Clock } from "../time/mod.ts";
import { describeStall } from "./_stage_control.ts";

/** One worker as `ScriptStage.workers` reports it. */
export interface WorkerInfo {
  stage: string;
  worker: number;
  /** `starting`: loading its script (a start or replacement); `stuck`: past the time slice, its work goes elsewhere; `replacing`: a reload. */
  state: "starting" | "idle" | "busy" | "stuck" | "replacing";
  /** What it runs now (a handler, with its script position when known), or null. */
  task: string | null;
  /** How long the current record has run, ms. */
  runningMs: number;
  inFlight: number;
  /** Records handled by the current worker since it started. */
  handled: number;
  /** Cooperative yields by the current worker since it started. */
  yields: number;
  busyMs: number;
  /** Times this worker slot was replaced (crash, hard limit, reload). */
  restarts: number;
}

/** Where {@link workerInfos} reads a stage's workers from. */
export interface WorkerInfoSource {
  stage: string;
  pool: WorkerPool;
  scheduler: FairScheduler;
  clock: Clock;
  /** Workers being replaced on purpose (a reload). */
  replacing: ReadonlySet<number>;
  /** Replacements of each worker so far. */
  restarts: readonly number[];
  /** Names a record's handler. */
  describe(record: ScheduledRecord): string;
}

/**
 * The {@link WorkerInfo} of every worker of a stage.
 *
 * @example
 * ```ts ignore
 * const infos = workerInfos({ stage: "start", pool, scheduler, clock, replacing, restarts, describe });
 * ```
 */
export function workerInfos(source: WorkerInfoSource): WorkerInfo[] {
  const { pool, scheduler } = source;
  const now = source.clock.wallNow();
  return Array.from({ length: pool.size }, (_, worker) => {
    const snapshot = pool.control(worker)?.snapshot();
    const running = snapshot?.running ?? false;
    const record = running && snapshot !== undefined
      ? scheduler.dispatchedRecord(worker, snapshot.ticket)
      : undefined;
    return {
      stage: source.stage,
      worker,
      state: source.replacing.has(worker)
        ? "replacing"
        : scheduler.starting(worker)
        ? "starting"
        : !scheduler.available(worker)
        ? "stuck"
        : running
        ? "busy"
        : "idle",
      task: !running
        ? null
        : record === undefined
        ? describeStall(snapshot!)
        : source.describe(record),
      runningMs: running ? Math.max(0, Math.round(now - snapshot!.startedAt)) : 0,
      inFlight: scheduler.inFlight(worker),
      handled: snapshot?.handled ?? 0,
      yields: snapshot?.yields ?? 0,
      busyMs: Math.round(snapshot?.busyMs ?? 0),
      restarts: source.restarts[worker] ?? 0,
    };
  });
}
