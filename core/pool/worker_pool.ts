/**
 * The main-thread side of a stage's workers: spawning, the rings to and from
 * each worker, counting work in flight, and replacing a worker that died.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { LogOptions } from "../log/mod.ts";
import { fromErrorRecord } from "../message/mod.ts";
import { RingBuffer, RingReceiver, RingSender } from "../ring/mod.ts";
import { ClaimTable } from "./claim_table.ts";
import { ControlBlock } from "./control_block.ts";
import { readRing } from "./_read_ring.ts";
import { ReloadProbe, type WorkerBlocks } from "./_reload_probe.ts";
import type { WorkerFactory, WorkerHandle } from "./worker_handle.ts";
import {
  type MainControl,
  type ProcessInfo,
  type ScriptSettings,
  type WorkerControl,
  type WorkerInit,
} from "./wire.ts";

/** Options of a {@link WorkerPool}. */
export interface WorkerPoolOptions {
  stageId: string;
  size: number;
  /** Data bytes of each ring (power of two). */
  ringCapacity: number;
  factory: WorkerFactory;
  /** The process's shared-variable table, given to every worker. */
  shared: SharedArrayBuffer;
  script: ScriptSettings;
  process: ProcessInfo;
  log: LogOptions;
  logger: Logger;
  /** A record from worker `worker`. */
  onRecord(worker: number, tag: number, a: number, b: number, body: Uint8Array): void;
  /** Worker `worker`'s outbound ring was drained: a good moment to flush output. */
  onTurnEnd(worker: number): void;
  /** A control message from a worker. */
  onControl(worker: number, message: WorkerControl): void;
  /**
   * Worker `worker` died or was terminated; its in-flight work is gone. Called
   * before its replacement starts (its claim table is still the old one).
   */
  onWorkerLost(worker: number, reason: string): void;
  /**
   * Worker `worker` (a first start or a replacement) was created and loads its
   * script: records sent to it from now on reach this incarnation, and it takes
   * replies meanwhile (a top-level `await stage.request(…)` waits for one).
   */
  onWorkerStarting?(worker: number): void;
  /** Worker `worker` (a first start or a replacement) loaded its script and takes work. */
  onWorkerReady(worker: number): void;
  /**
   * A request (a message with a reply address) that the reload probe's top
   * level sent: route it, and its reply reaches the probe through
   * {@link WorkerPool.deliverToProbe}. Absent: the probe's requests go unanswered.
   */
  onProbeRequest?(body: Uint8Array): void;
}

interface Slot {
  index: number;
  inbound: RingBuffer;
  outbound: RingBuffer;
  handle: WorkerHandle;
  sender: RingSender;
  receiver: RingReceiver;
  control: ControlBlock;
  claims: ClaimTable;
  abort: AbortController;
  generation: number;
  idle: boolean;
}

/** Raised when a worker cannot load the stage's script. */
export class WorkerStartError extends Error {
  override name = "WorkerStartError";
}

/** A fixed-size pool of workers running one stage's script. */
export class WorkerPool {
  #options: WorkerPoolOptions;
  #slots: Slot[] = [];
  #closed = false;
  #generation = 0;
  #detached: ClaimTable | undefined;
  /** The running reload probe (its worker index is {@link size}). */
  #probe: ReloadProbe | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`Worker pool size must be a positive integer; got ${options.size}`);
    }
    this.#options = options;
  }

  /** Number of workers. */
  get size(): number {
    return this.#options.size;
  }

  /** Starts every worker and resolves once each has loaded the main script. */
  async start(): Promise<void> {
    const starts: Promise<void>[] = [];
    for (let index = 0; index < this.#options.size; index++) starts.push(this.#spawn(index));
    const results = await Promise.allSettled(starts);
    const failure = results.find((result) => result.status === "rejected");
    if (failure !== undefined) {
      await this.close();
      throw (failure as PromiseRejectedResult).reason;
    }
  }

  /** Sends a record to a worker (the scheduler tracks what is in flight). */
  send(worker: number, tag: number, a: number, b: number, body?: Uint8Array, body2?: Uint8Array) {
    const slot = this.#slots[worker];
    if (slot === undefined || this.#closed) return;
    slot.sender.send(tag, a, b, body, body2);
  }

  /** The claim table of a worker's current incarnation. */
  claims(worker: number): ClaimTable {
    // After close, a scratch table: nothing reads it any more.
    return this.#slots[worker]?.claims ?? (this.#detached ??= ClaimTable.create());
  }

  /**
   * Reads what a worker has already written to its outbound ring, without
   * waiting for its doorbell: a worker stuck in a long record rings only after
   * it, so the results of the records it finished before would wait as long.
   */
  drainNow(worker: number): void {
    const slot = this.#slots[worker];
    if (slot === undefined || slot.abort.signal.aborted) return;
    const count = slot.receiver.drain((tag, a, b, body) =>
      this.#options.onRecord(slot.index, tag, a, b, body)
    );
    if (count > 0) this.#options.onTurnEnd(slot.index);
  }

  /** Terminates a worker (stuck past the hard limit) and starts a replacement. */
  terminate(worker: number, reason: string): void {
    const slot = this.#slots[worker];
    if (slot !== undefined) void this.#replace(slot, reason);
  }

  /**
   * Replaces a worker on purpose (a reload): it is terminated and a fresh one
   * loads the script again. Resolves once the replacement started (or failed
   * to, which is logged). Whatever the worker still ran is reported lost.
   */
  replace(worker: number, reason: string): Promise<void> {
    const slot = this.#slots[worker];
    return slot === undefined ? Promise.resolve() : this.#replace(slot, reason, true);
  }

  /**
   * Loads the stage's script in a throw-away worker, to learn whether it
   * loads at all, before live workers are replaced. Its records, listens and
   * side effects are ignored (`stage.once` is answered "already done"), except
   * its requests: see {@link WorkerPoolOptions.onProbeRequest}.
   *
   * @throws {WorkerStartError} the script does not load (the message names why)
   */
  async probe(timeoutMs = 30_000): Promise<void> {
    const options = this.#options;
    const probe = new ReloadProbe({
      stageId: options.stageId,
      index: options.size,
      handle: options.factory(options.size, `${options.stageId}#probe`),
      init: (blocks) => this.#init(options.size, blocks),
      ...(options.onProbeRequest === undefined ? {} : { onRequest: options.onProbeRequest }),
    });
    this.#probe = probe;
    try {
      await probe.run(timeoutMs);
    } catch (error) {
      throw new WorkerStartError(
        `Stage "${options.stageId}" script does not load: ${(error as Error).message}`,
        { cause: (error as Error).cause ?? error },
      );
    } finally {
      if (this.#probe === probe) this.#probe = undefined;
    }
  }

  /**
   * Hands a stage message addressed to the reload probe's worker index
   * ({@link size}) to the running probe. Returns false when no probe runs.
   */
  deliverToProbe(body: Uint8Array): boolean {
    return !this.#closed && this.#probe !== undefined && this.#probe.deliver(body);
  }

  /** The first message to worker `index`. */
  #init(index: number, blocks: WorkerBlocks): WorkerInit {
    const options = this.#options;
    return {
      type: "init",
      index,
      stageId: options.stageId,
      ...blocks,
      shared: options.shared,
      script: options.script,
      process: options.process,
      log: options.log,
    };
  }

  /** Sends a control message to one worker. */
  post(worker: number, message: MainControl): void {
    this.#slots[worker]?.handle.post(message);
  }

  /** Whether the stage's main script exported an idle function. */
  get hasIdle(): boolean {
    return this.#slots[0]?.idle ?? false;
  }

  /** Bytes waiting in a worker's rings and in the overflow queue towards it. */
  ringUsage(worker: number): { inbound: number; overflow: number; outbound: number } | undefined {
    const slot = this.#slots[worker];
    if (slot === undefined) return undefined;
    return {
      inbound: slot.inbound.usedBytes,
      overflow: slot.sender.queuedBytes,
      outbound: slot.outbound.usedBytes,
    };
  }

  /** The control block of a worker (what it runs, since when). */
  control(worker: number): ControlBlock | undefined {
    return this.#slots[worker]?.control;
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots) this.#stop(slot);
    this.#slots = [];
    await Promise.resolve();
  }

  #spawn(index: number): Promise<void> {
    const options = this.#options;
    const inbound = RingBuffer.create(options.ringCapacity);
    const outbound = RingBuffer.create(options.ringCapacity);
    // Doorbells: a sleeping side is woken by a port message (see RingBufferOptions.doorbell).
    const inboundBell = new MessageChannel();
    const outboundBell = new MessageChannel();
    const control = ControlBlock.create();
    const handle = options.factory(index, `${options.stageId}#${index}`);
    const slot: Slot = {
      index,
      inbound,
      outbound,
      handle,
      sender: new RingSender(
        new RingBuffer(inbound.buffer, { manualWake: true, doorbell: inboundBell.port1 }),
      ),
      // Pooled bodies: small records are copied into shared slabs (cheaper than one buffer each).
      receiver: new RingReceiver(
        new RingBuffer(outbound.buffer, { pooledBodies: true, doorbell: outboundBell.port1 }),
      ),
      control,
      claims: ClaimTable.create(),
      abort: new AbortController(),
      generation: ++this.#generation,
      idle: false,
    };
    this.#slots[index] = slot;
    // Read it from the start: a top-level `await stage.request(…)` sends before "ready".
    void this.#readLoop(slot);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      handle.onControl = (message) => {
        if (message.type === "ready") {
          ready = true;
          slot.idle = message.idle;
          resolve();
          options.onWorkerReady(index);
        } else if (message.type === "failed") {
          const error = fromErrorRecord(message.error);
          if (!ready) {
            reject(
              new WorkerStartError(
                `Stage "${options.stageId}" worker ${index} could not start: ${error.message}`,
                { cause: error },
              ),
            );
          } else options.logger.error("Worker {index} failed: {error}", { index, error });
        } else {
          options.onControl(index, message);
        }
      };
      handle.onError = (message) => {
        if (!ready) {
          reject(
            new WorkerStartError(
              `Stage "${options.stageId}" worker ${index} died while starting: ${message}`,
            ),
          );
          return;
        }
        void this.#replace(slot, message);
      };
      handle.post(
        this.#init(index, {
          inbound: inbound.buffer,
          outbound: outbound.buffer,
          inboundBell: inboundBell.port2,
          outboundBell: outboundBell.port2,
          control: control.buffer,
          claims: slot.claims.buffer,
        }),
        [inboundBell.port2, outboundBell.port2],
      );
      options.onWorkerStarting?.(index);
    });
  }

  #replace(slot: Slot, reason: string, planned = false): Promise<void> {
    if (this.#closed || this.#slots[slot.index] !== slot) return Promise.resolve();
    const log = this.#options.logger;
    const fields = { index: slot.index, stage: this.#options.stageId, reason };
    if (planned) log.info("Worker {index} of stage {stage} is replaced: {reason}", fields);
    else log.error("Worker {index} of stage {stage} is replaced: {reason}", fields);
    // What it finished before it died is not lost: read it first.
    this.drainNow(slot.index);
    this.#stop(slot);
    this.#options.onWorkerLost(slot.index, reason);
    return this.#spawn(slot.index).catch((error) =>
      log.error("Worker {index} could not be replaced: {error}", { index: slot.index, error })
    );
  }

  #stop(slot: Slot): void {
    slot.abort.abort();
    slot.sender.close();
    slot.sender.ring.close();
    slot.receiver.ring.close();
    slot.handle.terminate();
  }

  #readLoop(slot: Slot): Promise<void> {
    const options = this.#options;
    return readRing(
      slot.receiver,
      slot.abort.signal,
      (tag, a, b, body) => options.onRecord(slot.index, tag, a, b, body),
      () => options.onTurnEnd(slot.index),
    );
  }
}
