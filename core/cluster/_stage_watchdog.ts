/**
 * A script stage's watchdog, wired to its pool and scheduler: a worker past
 * the time slice is asked to yield and its work goes elsewhere (logged at most
 * once a second, with a count); past the hard limit it is terminated, naming
 * what it ran.
 *
 * @module
 */
import type { FairScheduler, ScheduledRecord } from "../pool/fair_scheduler.ts";
import { Watchdog } from "../pool/watchdog.ts";
import { packTicket, ToWorker, UNCLAIMED_SLOT } from "../pool/wire.ts";
import type { WorkerPool } from "../pool/worker_pool.ts";
import { describeStall } from "./_stage_control.ts";
import type { ScriptStageOptions } from "./script_stage_options.ts";

/** What a stage's watchdog watches and reports to. */
export interface StageWatchdogDeps {
  options: ScriptStageOptions;
  pool: WorkerPool;
  scheduler: FairScheduler;
  /** Names a record's handler for logs. */
  describe(record: ScheduledRecord): string;
}

/** Builds the watchdog of one script stage (not started). */
export function createStageWatchdog(deps: StageWatchdogDeps): Watchdog {
  const { options, pool, scheduler } = deps;
  const stage = options.stageId;
  let stuckLoggedAt = -Infinity;
  let stuckUnlogged = 0;
  const watchdog: Watchdog = new Watchdog({
    size: options.workers,
    // A worker loading its script (it runs only replies meanwhile) is not watched.
    control: (worker) => scheduler.starting(worker) ? undefined : pool.control(worker)?.snapshot(),
    waitingMs: (worker) => scheduler.waitingMs(worker),
    ping: (worker) => pool.send(worker, packTicket(ToWorker.Forget, UNCLAIMED_SLOT, 0), 0, 0),
    requestYield: (worker) => {
      pool.control(worker)?.requestYield();
      options.monitor?.yieldRequested(stage, worker);
    },
    stuck: (worker, ms, snapshot) => {
      // Busy scripts can do this often: one line per second, with a count.
      const now = options.clock.now();
      if (now - stuckLoggedAt >= 1000) {
        options.log.warning(
          "Worker {worker} of stage {stage} is stuck: {what} for {ms} ms; asking it to yield and sending its work elsewhere ({more} more times since the last report)",
          {
            worker,
            stage,
            what: describeStall(snapshot),
            ms: Math.round(ms),
            more: stuckUnlogged,
          },
        );
        stuckLoggedAt = now;
        stuckUnlogged = 0;
      } else stuckUnlogged++;
      pool.drainNow(worker); // results of the records it finished before this one
      scheduler.workerStuck(worker);
    },
    recovered: (worker) => scheduler.workerRecovered(worker),
    terminate: (worker, ms, snapshot) => {
      const record = snapshot.running
        ? scheduler.dispatchedRecord(worker, snapshot.ticket)
        : undefined;
      const what = record === undefined ? describeStall(snapshot) : `${deps.describe(record)} ran`;
      const reason = `${what} for ${
        Math.round(ms)
      } ms without yielding, past the hard limit of ${watchdog.hardLimitMs} ms`;
      pool.terminate(worker, reason);
    },
  }, {
    clock: options.clock,
    sliceMs: options.watchdog?.sliceMs ?? 50,
    hardLimitMs: options.watchdog?.hardLimitMs ?? 5000,
  });
  return watchdog;
}
