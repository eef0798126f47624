/**
 * A script stage on the main thread: its worker pool, its sockets, its idle
 * function and the control requests of its workers.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { LogOptions } from "../log/mod.ts";
import { type BrokerLimits, BrokerService, type SocketHomes } from "../net/broker_service.ts";
import type { Transport } from "../net/transport.ts";
import type { FlowGate, PendingBound } from "../net/flow_gate.ts";
import type { ConnectionQuota } from "../net/connection_quota.ts";
import { denoNetworkInterfaces, type NetworkInterfaces } from "../net/network_interfaces.ts";
import { FairScheduler, type ScheduledRecord } from "../pool/fair_scheduler.ts";
import { IdleScheduler } from "../pool/idle_scheduler.ts";
import { Watchdog } from "../pool/watchdog.ts";
import type { ControlSnapshot } from "../pool/control_block.ts";
import type { WorkerFactory } from "../pool/worker_handle.ts";
import { WorkerPool } from "../pool/worker_pool.ts";
import {
  decodeSignalHeader,
  encodeSignal,
  packTicket,
  type ProcessInfo,
  recordNames,
  replyHeader,
  type ScriptSettings,
  type SignalHeader,
  ticketHeader,
  ToMain,
  ToWorker,
  UNCLAIMED_SLOT,
  type WorkerControl,
} from "../pool/wire.ts";
import { type Clock, oncePerTask } from "../time/mod.ts";
import { lookupChain, packValues, toErrorRecord } from "../message/mod.ts";
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

/** What a stage reports for metrics and overload detection (the process's flow monitor). */
export interface StageMonitor {
  /** A record finished: queued → started delay and synchronous CPU time. */
  finished(stage: string, worker: number, tag: number, delayMs: number, cpuMs: number): void;
  /** The watchdog asked a worker to yield (it ran past the time slice). */
  yieldRequested(stage: string, worker: number): void;
  /**
   * A worker was replaced: terminated past the hard limit or crashed
   * (`"lost"`), or on purpose (`"reload"`).
   */
  workerLost(stage: string, worker: number, reason: string, cause: "lost" | "reload"): void;
  /** A record was lost with its worker. */
  recordLost(stage: string, worker: number, tag: number): void;
}

/** Forced-yielding limits (`#flow`). */
export interface WatchdogLimits {
  sliceMs: number;
  hardLimitMs: number;
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
  /** Time slice and hard limit of the watchdog (default 50 ms / 5 s). */
  watchdog?: WatchdogLimits;
  monitor?: StageMonitor;
  /** The process's input gate (shared by every stage's sockets). */
  gate?: FlowGate;
  /** The process's bound on queued frames (`#threads[1]`). */
  pending?: PendingBound;
  /** The process's connection limits (total and per IP). */
  quota?: ConnectionQuota;
  /** `#services` TCP addresses, shared with other processes (SO_REUSEPORT). */
  sharedAddresses?: readonly string[];
  /** What `broker.ifaddr()` answers (default: `Deno.networkInterfaces`). */
  networkInterfaces?: NetworkInterfaces;
}

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

/** What a stuck worker is doing, for logs. */
function describeStall(snapshot: ControlSnapshot): string {
  if (!snapshot.running) {
    return "its event loop started no waiting record (code after an await or in a timer is running)";
  }
  return `its ${
    recordNames[snapshot.tag] ?? `record ${snapshot.tag}`
  } handler (key ${snapshot.key}) ran`;
}

/** One worker as {@link ScriptStage.workers} reports it. */
export interface WorkerInfo {
  stage: string;
  worker: number;
  /** `stuck`: past the time slice, its work goes elsewhere; `replacing`: a reload. */
  state: "idle" | "busy" | "stuck" | "replacing";
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

/** What {@link ScriptStage.reload} did. */
export interface StageReload {
  stage: string;
  workers: number;
  /** Records still running at a worker's grace deadline (reported lost to their senders). */
  unfinished: number;
  ms: number;
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
  #stopped = false;
  /** Named waitfor ids reported by the workers → whether they are serial. */
  #waitfors = new Map<string, boolean>();
  #stuckLoggedAt = -Infinity;
  #stuckUnlogged = 0;
  /** Script positions of waitfor registrations and `broker.ready` calls, for logs. */
  #where = new Map<string, string>();
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
      onControl: (worker, message) => this.#control(worker, message),
      onWorkerLost: (worker, reason) => {
        this.#restarts[worker] = (this.#restarts[worker] ?? 0) + 1;
        const planned = this.#planned.has(worker);
        options.monitor?.workerLost(this.id, worker, reason, planned ? "reload" : "lost");
        this.#scheduler.workerLost(worker);
      },
      onWorkerReady: (worker) => {
        this.#watchdog.reset(worker);
        this.#scheduler.workerReady(worker);
      },
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
      lost: (record, worker) => this.#lost(record, worker),
    });
    this.#watchdog = new Watchdog({
      size: options.workers,
      control: (worker) => pool.control(worker)?.snapshot(),
      waitingMs: (worker) => this.#scheduler.waitingMs(worker),
      ping: (worker) => pool.send(worker, packTicket(ToWorker.Forget, UNCLAIMED_SLOT, 0), 0, 0),
      requestYield: (worker) => {
        pool.control(worker)?.requestYield();
        options.monitor?.yieldRequested(this.id, worker);
      },
      stuck: (worker, ms, snapshot) => {
        // Busy scripts can do this often: one line per second, with a count.
        const now = options.clock.now();
        if (now - this.#stuckLoggedAt >= 1000) {
          options.log.warning(
            "Worker {worker} of stage {stage} is stuck: {what} for {ms} ms; asking it to yield and sending its work elsewhere ({more} more times since the last report)",
            {
              worker,
              stage: this.id,
              what: describeStall(snapshot),
              ms: Math.round(ms),
              more: this.#stuckUnlogged,
            },
          );
          this.#stuckLoggedAt = now;
          this.#stuckUnlogged = 0;
        } else this.#stuckUnlogged++;
        pool.drainNow(worker); // results of the records it finished before this one
        this.#scheduler.workerStuck(worker);
      },
      recovered: (worker) => this.#scheduler.workerRecovered(worker),
      terminate: (worker, ms, snapshot) => {
        const record = snapshot.running
          ? this.#scheduler.dispatchedRecord(worker, snapshot.ticket)
          : undefined;
        const what = record === undefined
          ? describeStall(snapshot)
          : `${this.#describe(record)} ran`;
        const reason = `${what} for ${
          Math.round(ms)
        } ms without yielding, past the hard limit of ${this.#watchdog.hardLimitMs} ms`;
        pool.terminate(worker, reason);
      },
    }, {
      clock: options.clock,
      sliceMs: options.watchdog?.sliceMs ?? 50,
      hardLimitMs: options.watchdog?.hardLimitMs ?? 5000,
    });
    const scheduler = this.#scheduler;
    const homes: SocketHomes = {
      bind: (id, eligible, worker) => scheduler.bindSocket(id, eligible, worker),
      workerOf: (id) => scheduler.homeOf(id),
      unbind: () => {}, // the Closed record that follows ends the socket's flow
    };
    this.#broker = new BrokerService({
      stageId: options.stageId,
      transport: options.transport,
      workers: {
        send(worker, tag, a, b, body, body2) {
          if (tag === ToWorker.JoinFailed) {
            scheduler.enqueueFree("join", tag, a, b, body ?? new Uint8Array(0), worker);
            return;
          }
          if (tag === ToWorker.Frame) options.pending?.add();
          scheduler.enqueueSocket(a, tag, b, body, body2);
          if (tag === ToWorker.Closed) scheduler.socketClosed(a);
        },
        post: (worker, message) => pool.post(worker, message),
      },
      scheduler: homes,
      ...(options.gate === undefined ? {} : { gate: options.gate }),
      ...(options.quota === undefined ? {} : { quota: options.quota }),
      ...(options.sharedAddresses === undefined
        ? {}
        : { sharedAddresses: options.sharedAddresses }),
      clock: options.clock,
      log: options.log,
      ...(options.limits === undefined ? {} : { limits: options.limits }),
    });
    this.#idle = new IdleScheduler({
      clock: options.clock,
      isIdle: () => scheduler.inFlightTotal === 0 && scheduler.queued === 0,
      run: () => scheduler.enqueueFree("idle", ToWorker.Idle, 0, 0, new Uint8Array(0), 0),
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
      ? this.#serialKey(header.message)
      : 0;
    if (key !== 0) {
      this.#scheduler.enqueueOrdered(key, ToWorker.Signal, owned);
      return;
    }
    const worker = header.worker;
    const pinned = worker !== undefined && worker >= 0 && worker < this.#pool.size;
    const sender = `${header.from.stage}#${header.from.worker}`;
    if (pinned) this.#scheduler.enqueueFree(sender, ToWorker.Signal, 0, 0, owned, worker);
    else this.#scheduler.enqueueFree(sender, ToWorker.Signal, 0, 0, owned);
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
    const now = this.#options.clock.wallNow();
    return Array.from({ length: this.#pool.size }, (_, worker) => {
      const snapshot = this.#pool.control(worker)?.snapshot();
      const running = snapshot?.running ?? false;
      const record = running && snapshot !== undefined
        ? this.#scheduler.dispatchedRecord(worker, snapshot.ticket)
        : undefined;
      return {
        stage: this.id,
        worker,
        state: this.#planned.has(worker)
          ? "replacing"
          : !this.#scheduler.available(worker)
          ? "stuck"
          : running
          ? "busy"
          : "idle",
        task: !running
          ? null
          : record === undefined
          ? describeStall(snapshot!)
          : this.#describe(record),
        runningMs: running ? Math.max(0, Math.round(now - snapshot!.startedAt)) : 0,
        inFlight: this.#scheduler.inFlight(worker),
        handled: snapshot?.handled ?? 0,
        yields: snapshot?.yields ?? 0,
        busyMs: Math.round(snapshot?.busyMs ?? 0),
        restarts: this.#restarts[worker] ?? 0,
      };
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
    this.#reloading ??= this.#reload(graceMs).finally(() => this.#reloading = undefined);
    return this.#reloading;
  }

  async #reload(graceMs: number): Promise<StageReload> {
    const clock = this.#options.clock;
    const started = clock.now();
    await this.#pool.probe();
    let unfinished = 0;
    for (let worker = 0; worker < this.#pool.size && !this.#stopped; worker++) {
      this.#planned.add(worker);
      this.#scheduler.workerRetiring(worker);
      const deadline = clock.now() + graceMs;
      while (this.#scheduler.inFlight(worker) > 0 && clock.now() < deadline && !this.#stopped) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      unfinished += this.#scheduler.inFlight(worker);
      await this.#pool.replace(worker, "reload");
      this.#planned.delete(worker);
    }
    const report = {
      stage: this.id,
      workers: this.#pool.size,
      unfinished,
      ms: Math.round(clock.now() - started),
    };
    this.#options.log.info(
      "Stage {stage} reloaded: {workers} workers replaced in {ms} ms ({unfinished} records cut short)",
      report,
    );
    return report;
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

  /**
   * Names a record's handler for logs, with the script position of its
   * registration when known: `the handler of message "spin" (waitfor at
   * file:///…/calc.ts:5:7)`.
   */
  #describe(record: ScheduledRecord): string {
    if (record.tag === ToWorker.Signal) {
      const { header } = decodeSignalHeader(record.body);
      if (header.submit !== undefined) return `the stage.submit function (key ${header.submit})`;
      const id = lookupChain(header.message).find((candidate) => this.#waitfors.has(candidate));
      const where = id === undefined ? undefined : this.#where.get(`waitfor:${id}`);
      return `the handler of message "${header.message}"${
        where === undefined ? "" : ` (waitfor at ${where})`
      }`;
    }
    const what = recordNames[record.tag] ?? `record ${record.tag}`;
    const url = this.#broker.urlOf(record.a);
    const where = url === undefined ? undefined : this.#where.get(`listen:${url}`);
    return `the ${what} handler of socket ${record.a}${
      where === undefined ? "" : ` (broker.ready at ${where})`
    }`;
  }

  /** A started record died with its worker: its sender learns, nothing else is lost. */
  #lost(record: ScheduledRecord, worker: number): void {
    this.#options.monitor?.recordLost(this.id, worker, record.tag);
    if (record.tag === ToWorker.Frame) {
      this.#broker.frameDone(record.a);
      this.#options.pending?.remove();
    }
    this.#options.log.error("Stage {stage} worker {worker} was lost while running {what}", {
      stage: this.id,
      worker,
      what: this.#describe(record),
    });
    if (record.tag !== ToWorker.Signal) return;
    const { header } = decodeSignalHeader(record.body);
    if (header.ticket?.hold) {
      // A ticket held by the lost handler: its slot goes back at once, not on expiry.
      const release = ticketHeader(header.ticket, header.from, "<", { stage: this.id, worker });
      this.#options.bus.route(encodeSignal(release, packValues([header.ticket.id]).bytes));
    }
    const reply = header.reply;
    if (reply === undefined || header.error) return;
    const errorHeader = replyHeader(reply, { stage: this.id, worker }, true);
    const error = {
      name: "WorkerTerminatedError",
      message:
        `The handler of "${header.message}" on stage "${this.id}" worker ${worker} did not complete: its worker was terminated or crashed`,
    };
    this.#options.bus.route(encodeSignal(errorHeader, packValues([error]).bytes));
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

  /** `broker.ifaddr()`: workers usually lack the `sys` permission, so the main thread reads them. */
  #answerIfaddr(worker: number, requestId: number): void {
    try {
      const addresses = (this.#options.networkInterfaces ?? denoNetworkInterfaces)();
      this.#pool.post(worker, { type: "ifaddr-result", requestId, addresses });
    } catch (error) {
      this.#pool.post(worker, { type: "ifaddr-result", requestId, error: toErrorRecord(error) });
    }
  }

  #control(worker: number, message: WorkerControl): void {
    switch (message.type) {
      case "listen":
        if (message.where !== undefined) this.#where.set(`listen:${message.url}`, message.where);
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
      case "ifaddr":
        this.#answerIfaddr(worker, message.requestId);
        return;
      case "waitfor":
        this.#waitfors.set(message.id, message.serial);
        if (message.where !== undefined) this.#where.set(`waitfor:${message.id}`, message.where);
        return;
      case "unwaitfor":
        this.#waitfors.delete(message.id);
        this.#where.delete(`waitfor:${message.id}`);
        return;
      case "ready":
      case "failed":
        return; // handled by the pool
    }
  }
}
