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
import { MacrotaskYield } from "./macrotask_yield.ts";
import type { WorkerFactory, WorkerHandle } from "./worker_handle.ts";
import {
  type MainControl,
  type ProcessInfo,
  type ScriptSettings,
  type WorkerControl,
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
  /** Worker `worker` (a first start or a replacement) loaded its script and takes work. */
  onWorkerReady(worker: number): void;
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

/** Longest stretch a read loop runs before letting I/O in. */
const YIELD_EVERY_MS = 2;

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
   * side effects are ignored (`stage.once` is answered "already done").
   *
   * @throws {WorkerStartError} the script does not load (the message names why)
   */
  async probe(timeoutMs = 30_000): Promise<void> {
    const options = this.#options;
    const inbound = RingBuffer.create(1 << 16);
    const outbound = RingBuffer.create(1 << 16);
    const inboundBell = new MessageChannel();
    const outboundBell = new MessageChannel();
    const handle = options.factory(options.size, `${options.stageId}#probe`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        const fail = (why: string, cause?: unknown) =>
          reject(
            new WorkerStartError(`Stage "${options.stageId}" script does not load: ${why}`, {
              cause,
            }),
          );
        timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
        handle.onControl = (message) => {
          if (message.type === "ready") resolve();
          else if (message.type === "failed") {
            const error = fromErrorRecord(message.error);
            fail(error.message, error);
          } else if (message.type === "once") {
            handle.post({ type: "once-result", requestId: message.requestId, first: false });
          } else if (message.type === "ifaddr") {
            // The probe's answers are thrown away with it: it only must not hang.
            handle.post({ type: "ifaddr-result", requestId: message.requestId, addresses: [] });
          }
        };
        handle.onError = (message) => fail(message);
        handle.post({
          type: "init",
          index: options.size,
          stageId: options.stageId,
          inbound: inbound.buffer,
          outbound: outbound.buffer,
          inboundBell: inboundBell.port2,
          outboundBell: outboundBell.port2,
          control: ControlBlock.create().buffer,
          claims: ClaimTable.create().buffer,
          shared: options.shared,
          script: options.script,
          process: options.process,
          log: options.log,
        }, [inboundBell.port2, outboundBell.port2]);
      });
    } finally {
      clearTimeout(timer);
      handle.terminate();
      inboundBell.port1.close();
      outboundBell.port1.close();
    }
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
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      handle.onControl = (message) => {
        if (message.type === "ready") {
          ready = true;
          slot.idle = message.idle;
          this.#readLoop(slot);
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
      handle.post({
        type: "init",
        index,
        stageId: options.stageId,
        inbound: inbound.buffer,
        outbound: outbound.buffer,
        inboundBell: inboundBell.port2,
        outboundBell: outboundBell.port2,
        control: control.buffer,
        claims: slot.claims.buffer,
        shared: options.shared,
        script: options.script,
        process: options.process,
        log: options.log,
      }, [inboundBell.port2, outboundBell.port2]);
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

  async #readLoop(slot: Slot): Promise<void> {
    const options = this.#options;
    const onRecord = (tag: number, a: number, b: number, body: Uint8Array) =>
      options.onRecord(slot.index, tag, a, b, body);
    const signal = slot.abort.signal;
    using pause = new MacrotaskYield(YIELD_EVERY_MS);
    while (!signal.aborted) {
      const count = slot.receiver.drain(onRecord);
      if (count > 0) {
        options.onTurnEnd(slot.index);
        // A busy worker must not starve sockets, timers and the other workers' loops.
        await pause.maybe();
        continue;
      }
      try {
        await slot.receiver.wait(undefined, signal);
      } catch {
        return; // aborted
      }
      pause.reset();
    }
  }
}
