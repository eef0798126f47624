/**
 * A script stage on the main thread: its worker pool, its sockets, its idle
 * function and the control requests of its workers.
 *
 * @module
 */
import type { BrokerService } from "../net/broker_service.ts";
import { FairScheduler } from "../pool/fair_scheduler.ts";
import { IdleScheduler } from "../pool/idle_scheduler.ts";
import type { Watchdog } from "../pool/watchdog.ts";
import { WorkerPool } from "../pool/worker_pool.ts";
import { type SignalHeader, ToMain, ToWorker } from "../pool/wire.ts";
import { oncePerTask } from "../time/mod.ts";
import { reportLostRecord } from "./_lost_records.ts";
import { submitKey } from "./_ordering_keys.ts";
import { createStageBroker } from "./_stage_broker.ts";
import { StageControl } from "./_stage_control.ts";
import { createStageWatchdog } from "./_stage_watchdog.ts";
import type { ScriptStageOptions } from "./script_stage_options.ts";
import { reloadWorkers, type StageReload } from "./stage_reload.ts";
import { type WorkerInfo, workerInfos } from "./worker_info.ts";

export type { ScriptStageOptions, StageMonitor, WatchdogLimits } from "./script_stage_options.ts";
export type { StageReload } from "./stage_reload.ts";
export type { WorkerInfo } from "./worker_info.ts";

/** Raised when a stage cannot start (script failed to load, address in use, …). */
export class StageStartError extends Error {
  override name = "StageStartError";
}

const float64 = new Float64Array(1);
const float64Bytes = new Uint8Array(float64.buffer);

/** The little-endian float64 at the start of `bytes`, without allocating. */
function readFloat64(bytes: Uint8Array): number {
  for (let i = 0; i < 8; i++) float64Bytes[i] = bytes[i]!;
  return float64[0]!;
}

/** A running script stage. */
export class ScriptStage {
  readonly id: string;
  #options: ScriptStageOptions;
  #pool: WorkerPool;
  #scheduler: FairScheduler;
  #watchdog: Watchdog;
  #broker: BrokerService;
  #idle: IdleScheduler;
  /** Control requests of the workers, and what their registrations tell. */
  #control: StageControl;
  #stopped = false;
  /** Replacements of each worker so far (crashes, the hard limit, reloads). */
  #restarts: number[];
  /** Workers being replaced on purpose (a reload): not counted as lost. */
  #planned = new Set<number>();
  #reloading: Promise<StageReload> | undefined;
  #started = false;

  constructor(options: ScriptStageOptions) {
    this.id = options.stageId;
    this.#options = options;
    this.#restarts = new Array(options.workers).fill(0);
    this.#pool = new WorkerPool({
      stageId: options.stageId,
      size: options.workers,
      ringCapacity: options.ringCapacity,
      factory: options.factory,
      shared: options.shared,
      script: options.script,
      process: options.process,
      log: options.logOptions,
      logger: options.log,
      onRecord: (worker, tag, a, b, body) => this.#record(worker, tag, a, b, body),
      onTurnEnd: () => this.#broker.flush(),
      onControl: (worker, message) => this.#control.handle(worker, message),
      onWorkerLost: (worker, reason) => {
        this.#restarts[worker] = (this.#restarts[worker] ?? 0) + 1;
        const planned = this.#planned.has(worker);
        options.monitor?.workerLost(this.id, worker, reason, planned ? "reload" : "lost");
        this.#scheduler.workerLost(worker);
      },
      onWorkerStarting: (worker) => this.#scheduler.workerStarting(worker),
      onWorkerReady: (worker) => {
        this.#watchdog.reset(worker);
        this.#scheduler.workerReady(worker);
      },
      onProbeRequest: (body) => options.bus.route(body),
    });
    const pool = this.#pool;
    this.#scheduler = new FairScheduler({
      size: options.workers,
      send: (worker, word, a, b, body) => pool.send(worker, word, a, b, body),
      claims: (worker) => pool.claims(worker),
      starts: (worker) => pool.control(worker)?.starts ?? 0,
      blocked: (worker) => pool.control(worker)?.blocked ?? 0,
    }, {
      now: oncePerTask(() => options.clock.wallNow()),
      finished: (record, worker, delayMs, cpuMs) => {
        if (record.tag === ToWorker.Frame) {
          this.#broker.frameDone(record.a);
          options.pending?.remove();
        }
        options.monitor?.finished(this.id, worker, record.tag, delayMs, cpuMs);
      },
      reopen: (id) => this.#broker.reopen(id),
      lost: (record, worker) =>
        reportLostRecord(record, worker, options, this.#broker, (r) => this.#control.describe(r)),
    });
    const scheduler = this.#scheduler;
    this.#watchdog = createStageWatchdog({
      options,
      pool,
      scheduler,
      describe: (record) => this.#control.describe(record),
    });
    this.#broker = createStageBroker(options, scheduler, pool);
    this.#idle = new IdleScheduler({
      clock: options.clock,
      isIdle: () => scheduler.inFlightTotal === 0 && scheduler.queued === 0,
      run: () => scheduler.enqueueFree("idle", ToWorker.Idle, 0, 0, new Uint8Array(0), 0),
    });
    this.#control = new StageControl({
      pool,
      broker: this.#broker,
      once: options.once,
      networkInterfaces: options.networkInterfaces,
    });
  }

  /**
   * Queues a stage message for this stage's workers: replies go back to the
   * worker that asked; submit keys and serial waitfors run in order, one worker
   * at a time; anything else runs on any worker, fairly shared per sender.
   */
  deliver(header: SignalHeader, body: Uint8Array): void {
    // The body may be a view into a ring's shared slab: keep a copy while it waits.
    const owned = body.slice();
    const key = header.submit !== undefined
      ? submitKey(header.submit)
      : header.worker === undefined
      ? this.#control.serialKey(header.message)
      : 0;
    if (key !== 0) {
      this.#scheduler.enqueueOrdered(key, ToWorker.Signal, owned);
      return;
    }
    const worker = header.worker;
    // The reload probe's index is the pool size: its top-level requests get replies.
    if (worker === this.#pool.size && this.#pool.deliverToProbe(owned)) return;
    const pinned = worker !== undefined && worker >= 0 && worker < this.#pool.size;
    const sender = `${header.from.stage}#${header.from.worker}`;
    // Pinned = a reply or exact delivery: it reaches a worker still loading its script.
    if (pinned) this.#scheduler.enqueueFree(sender, ToWorker.Signal, 0, 0, owned, worker, true);
    else this.#scheduler.enqueueFree(sender, ToWorker.Signal, 0, 0, owned);
  }

  /** The broker service (sockets and listeners) of this stage. */
  get broker(): BrokerService {
    return this.#broker;
  }

  /** The worker pool of this stage. */
  get pool(): WorkerPool {
    return this.#pool;
  }

  /** The scheduler of this stage's records. */
  get scheduler(): FairScheduler {
    return this.#scheduler;
  }

  /** The watchdog of this stage's workers. */
  get watchdog(): Watchdog {
    return this.#watchdog;
  }

  /** Where the stage is in its life: it takes messages while `ready` or `reloading`. */
  get state(): "starting" | "ready" | "reloading" | "stopping" {
    if (this.#stopped) return "stopping";
    if (!this.#started) return "starting";
    return this.#reloading === undefined ? "ready" : "reloading";
  }

  /**
   * What each worker is doing now: the record it runs and for how long, its
   * queue, yields and replacements so far (plain data, for the admin API).
   */
  workers(): WorkerInfo[] {
    return workerInfos({
      stage: this.id,
      pool: this.#pool,
      scheduler: this.#scheduler,
      clock: this.#options.clock,
      replacing: this.#planned,
      restarts: this.#restarts,
      describe: (record) => this.#control.describe(record),
    });
  }

  /**
   * Reloads the stage's scripts: first loads them in a throw-away worker (a
   * script that does not load changes nothing and rejects), then replaces the
   * workers one at a time — each takes no new work, finishes what it runs
   * (bounded by `graceMs`; past it, that work is reported lost to its senders)
   * and is replaced by a fresh worker that loads the current files. The other
   * workers serve meanwhile. A reload asked for during another returns it.
   *
   * @throws {WorkerStartError} (rejects) the script does not load now
   */
  reload(graceMs = 5000): Promise<StageReload> {
    this.#reloading ??= reloadWorkers({
      stage: this.id,
      pool: this.#pool,
      scheduler: this.#scheduler,
      clock: this.#options.clock,
      log: this.#options.log,
      planned: this.#planned,
      stopped: () => this.#stopped,
    }, graceMs).finally(() => this.#reloading = undefined);
    return this.#reloading;
  }

  /**
   * Starts the workers (each runs the main script's top level) and binds what
   * they listen on.
   *
   * @throws StageStartError when a worker cannot load the script or an address cannot be bound
   */
  async start(): Promise<void> {
    const log = this.#options.log;
    try {
      await this.#pool.start();
    } catch (error) {
      await this.#broker.close(0);
      throw new StageStartError(
        `Stage "${this.id}" failed to start: ${error instanceof Error ? error.message : error}`,
        { cause: error },
      );
    }
    const failed = this.#broker.failedListens[0];
    if (failed !== undefined) {
      await this.stop(0);
      const reason = failed.error instanceof Error ? failed.error.message : String(failed.error);
      throw new StageStartError(`Stage "${this.id}" cannot listen on ${failed.url}: ${reason}`, {
        cause: failed.error,
      });
    }
    this.#watchdog.start();
    this.#started = true;
    this.#broker.startAccepting();
    if (this.#pool.hasIdle) this.#idle.start();
    log.info("Stage {stage} started with {workers} workers", {
      stage: this.id,
      workers: this.#pool.size,
    });
  }

  /**
   * Stops gracefully: stop accepting, let queued and running work finish
   * (bounded by `graceMs`), write queued output, close sockets, stop the workers.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#idle.stop();
    this.#broker.stopAccepting();
    const deadline = this.#options.clock.now() + graceMs;
    const scheduler = this.#scheduler;
    const settle = async () => {
      while (
        scheduler.inFlightTotal + scheduler.queued > 0 && this.#options.clock.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    await settle();
    await this.#broker.close(Math.max(0, deadline - this.#options.clock.now()));
    await settle(); // the close callbacks, within what is left of the grace period
    this.#watchdog.stop();
    await this.#pool.close();
    this.#options.log.info("Stage {stage} stopped", { stage: this.id });
  }

  #record(worker: number, tag: number, a: number, b: number, body: Uint8Array): void {
    if (tag === ToMain.Done) {
      const startedAt = body.length >= 8 ? readFloat64(body) : this.#options.clock.wallNow();
      this.#scheduler.done(worker, a, b, startedAt);
      return;
    }
    if (this.#broker.record(tag, a, b, body)) return;
    if (tag === ToMain.Signal) {
      this.#options.bus.route(body);
      return;
    }
    if (tag === ToMain.IdleDone) {
      const next = body.length >= 8
        ? new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true)
        : 0;
      this.#idle.done(next);
      return;
    }
    this.#options.log.error("Unknown record tag {tag} from a worker", { tag });
  }
}
