/**
 * Reloading a script stage: its scripts are first loaded in a throw-away
 * worker, then the workers are replaced one at a time while the others serve.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { FairScheduler } from "../pool/fair_scheduler.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import type { Clock } from "../time/mod.ts";

/** What `ScriptStage.reload` did. */
export interface StageReload {
  stage: string;
  workers: number;
  /** Records still running at a worker's grace deadline (reported lost to their senders). */
  unfinished: number;
  ms: number;
}

/** The stage {@link reloadWorkers} works on. */
export interface ReloadTarget {
  stage: string;
  pool: WorkerPool;
  scheduler: FairScheduler;
  clock: Clock;
  log: Logger;
  /** Workers being replaced on purpose: each is in it while it is replaced. */
  planned: Set<number>;
  /** Whether the stage is stopping (the reload ends early). */
  stopped(): boolean;
}

/**
 * Probes the scripts, then replaces each worker in turn: it takes no new work,
 * finishes what it runs (bounded by `graceMs`) and is replaced by a fresh one.
 *
 * @throws {WorkerStartError} (rejects) the script does not load now
 * @example
 * ```ts ignore
 * const report = await reloadWorkers({ stage, pool, scheduler, clock, log, planned, stopped }, 5000);
 * ```
 */
export async function reloadWorkers(target: ReloadTarget, graceMs: number): Promise<StageReload> {
  const { pool, scheduler, clock, planned } = target;
  const started = clock.now();
  await pool.probe();
  let unfinished = 0;
  for (let worker = 0; worker < pool.size && !target.stopped(); worker++) {
    planned.add(worker);
    scheduler.workerRetiring(worker);
    const deadline = clock.now() + graceMs;
    while (scheduler.inFlight(worker) > 0 && clock.now() < deadline && !target.stopped()) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    unfinished += scheduler.inFlight(worker);
    await pool.replace(worker, "reload");
    planned.delete(worker);
  }
  const report = {
    stage: target.stage,
    workers: pool.size,
    unfinished,
    ms: Math.round(clock.now() - started),
  };
  target.log.info(
    "Stage {stage} reloaded: {workers} workers replaced in {ms} ms ({unfinished} records cut short)",
    report,
  );
  return report;
}
