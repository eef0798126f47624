/**
 * A script stage on the main thread: its worker pool, its sockets, its idle
 * function and the control requests of its workers.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { LogOptions } from "../log/mod.ts";
import { type BrokerLimits, BrokerService } from "../net/broker_service.ts";
import type { Transport } from "../net/transport.ts";
import { IdleScheduler } from "../pool/idle_scheduler.ts";
import { KeyScheduler } from "../pool/key_scheduler.ts";
import type { WorkerFactory } from "../pool/worker_handle.ts";
import { WorkerPool } from "../pool/worker_pool.ts";
import {
  type ProcessInfo,
  type ScriptSettings,
  type SignalHeader,
  ToMain,
  ToWorker,
  type WorkerControl,
} from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";
import { lookupChain } from "../message/mod.ts";
import type { Bus } from "./local_bus.ts";
import type { OnceRegistry } from "./once_registry.ts";

/**
 * The ordering key of a name: keys of serial waitfors and submit keys live above
 * 2^31, apart from socket ids (a rare hash collision only serialises two names).
 */
function orderingKey(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return ((hash >>> 1) | 0x80000000) >>> 0;
}

/** The ordering key of a `stage.submit` key (0 and "" mean no ordering). */
function submitKey(key: number | string): number {
  return key === 0 || key === "" ? 0 : orderingKey(`submit:${typeof key}:${key}`);
}

/** Everything a {@link ScriptStage} needs. */
export interface ScriptStageOptions {
  stageId: string;
  workers: number;
  ringCapacity: number;
  script: ScriptSettings;
  process: ProcessInfo;
  logOptions: LogOptions;
  factory: WorkerFactory;
  transport: Transport;
  once: OnceRegistry;
  /** The process's shared-variable table (`stage.shared`). */
  shared: SharedArrayBuffer;
  /** Routes stage messages between stages. */
  bus: Bus;
  clock: Clock;
  log: Logger;
  limits?: Partial<BrokerLimits>;
}

/** Raised when a stage cannot start (script failed to load, address in use, …). */
export class StageStartError extends Error {
  override name = "StageStartError";
}

/** A running script stage. */
export class ScriptStage {
  readonly id: string;
  #options: ScriptStageOptions;
  #pool: WorkerPool;
  #scheduler: KeyScheduler;
  #broker: BrokerService;
  #idle: IdleScheduler;
  #stopped = false;
  /** Named waitfor ids reported by the workers → whether they are serial. */
  #waitfors = new Map<string, boolean>();
  /** Messages in flight per serial key. */
  #serialInFlight = new Map<number, number>();

  constructor(options: ScriptStageOptions) {
    this.id = options.stageId;
    this.#options = options;
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
      onControl: (worker, message) => this.#control(worker, message),
      onWorkerLost: (worker) => this.#broker.workerLost(worker),
    });
    this.#scheduler = new KeyScheduler(this.#pool);
    this.#broker = new BrokerService({
      stageId: options.stageId,
      transport: options.transport,
      workers: this.#pool,
      scheduler: this.#scheduler,
      clock: options.clock,
      log: options.log,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    this.#idle = new IdleScheduler({
      clock: options.clock,
      isIdle: () => this.#pool.totalInFlight === 0,
      run: () => this.#pool.send(0, ToWorker.Idle, 0, 0),
    });
  }

  /**
   * Delivers a stage message to one worker: the one named in the header (replies
   * go back to the worker that asked), else the least loaded.
   */
  deliver(header: SignalHeader, body: Uint8Array): void {
    let worker = header.worker;
    const key = header.submit !== undefined
      ? submitKey(header.submit)
      : header.worker === undefined
      ? this.#serialKey(header.message)
      : 0;
    if (key !== 0) {
      // One worker per serial waitfor while it has messages in flight: the
      // worker's key executor then runs them one at a time, in order.
      worker = this.#scheduler.bind(key);
      this.#serialInFlight.set(key, (this.#serialInFlight.get(key) ?? 0) + 1);
      this.#pool.send(worker, ToWorker.Signal, key, 0, body);
      return;
    }
    if (worker === undefined || worker < 0 || worker >= this.#pool.size) {
      worker = 0;
      for (let w = 1; w < this.#pool.size; w++) {
        if (this.#pool.inFlight(w) < this.#pool.inFlight(worker)) worker = w;
      }
    }
    this.#pool.send(worker, ToWorker.Signal, 0, 0, body);
  }

  /** The ordering key of a message to a serial waitfor (0: not serial). */
  #serialKey(message: string): number {
    for (const id of lookupChain(message)) {
      const serial = this.#waitfors.get(id);
      if (serial === undefined) continue;
      if (!serial) return 0;
      return orderingKey(`waitfor:${id}`);
    }
    return 0;
  }

  #serialDone(key: number): void {
    const left = (this.#serialInFlight.get(key) ?? 1) - 1;
    if (left > 0) {
      this.#serialInFlight.set(key, left);
      return;
    }
    this.#serialInFlight.delete(key);
    this.#scheduler.unbind(key);
  }

  /** The broker service (sockets and listeners) of this stage. */
  get broker(): BrokerService {
    return this.#broker;
  }

  /** The worker pool of this stage. */
  get pool(): WorkerPool {
    return this.#pool;
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
    this.#broker.startAccepting();
    if (this.#pool.hasIdle) this.#idle.start();
    log.info("Stage {stage} started with {workers} workers", {
      stage: this.id,
      workers: this.#pool.size,
    });
  }

  /**
   * Stops gracefully: stop accepting, let work in flight finish (bounded by
   * `graceMs`), write queued output, close sockets, stop the workers.
   */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#idle.stop();
    this.#broker.stopAccepting();
    const deadline = this.#options.clock.now() + graceMs;
    const settle = async () => {
      while (this.#pool.totalInFlight > 0 && this.#options.clock.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    await settle();
    await this.#broker.close(Math.max(0, deadline - this.#options.clock.now()));
    await settle(); // the close callbacks, within what is left of the grace period
    await this.#pool.close();
    this.#options.log.info("Stage {stage} stopped", { stage: this.id });
  }

  #record(_worker: number, tag: number, a: number, b: number, body: Uint8Array): void {
    if (tag === ToMain.Done && b === ToWorker.Signal && a !== 0) this.#serialDone(a);
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

  #control(worker: number, message: WorkerControl): void {
    switch (message.type) {
      case "listen":
        this.#broker.listen(worker, message.url);
        return;
      case "server-expire":
        this.#broker.setServerExpire(message.url, message.ms);
        return;
      case "server-stop":
        this.#broker.stopServer(message.url);
        return;
      case "join":
        this.#broker.join(worker, message.url, message.requestId);
        return;
      case "once":
        this.#pool.post(worker, {
          type: "once-result",
          requestId: message.requestId,
          first: this.#options.once.claim(message.name),
        });
        return;
      case "once-forget":
        this.#options.once.forget(message.name);
        return;
      case "waitfor":
        this.#waitfors.set(message.id, message.serial);
        return;
      case "unwaitfor":
        this.#waitfors.delete(message.id);
        return;
      case "ready":
      case "failed":
        return; // handled by the pool
    }
  }
}
