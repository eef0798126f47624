/**
 * The worker pool: workers, their rings and control blocks, key scheduling and
 * the wire format between the main thread and the workers.
 *
 * @module
 */
export { ControlBlock, type ControlSnapshot } from "./control_block.ts";
export { IdleScheduler, type IdleSchedulerOptions } from "./idle_scheduler.ts";
export { KeyExecutor, type KeyExecutorHooks, type RecordHandler } from "./key_executor.ts";
export { CLAIM_SLOTS, ClaimTable } from "./claim_table.ts";
export {
  FairScheduler,
  type FairSchedulerHooks,
  type FairSchedulerOptions,
  type FlowKind,
  type ScheduledRecord,
  type SchedulerPort,
} from "./fair_scheduler.ts";
export { Watchdog, type WatchdogOptions, type WatchdogTarget } from "./watchdog.ts";
export { MacrotaskYield } from "./macrotask_yield.ts";
export {
  denoWorkerFactory,
  type WorkerFactory,
  type WorkerHandle,
  type WorkerPermissions,
} from "./worker_handle.ts";
export { WorkerPool, type WorkerPoolOptions, WorkerStartError } from "./worker_pool.ts";
export * from "./wire.ts";
