/**
 * Worker-side execution in key order: records with the same non-zero key run one
 * at a time in arrival order (an async handler holds its key until its promise
 * settles); key 0 means "no ordering" and runs at once. A ticketed record is
 * claimed in the claim table first: one the main thread took back (to run it
 * elsewhere while this worker was stuck) is skipped.
 *
 * @module
 */
import type { ClaimTable } from "./claim_table.ts";
import type { ControlBlock } from "./control_block.ts";
import { ticketOf, UNCLAIMED_SLOT } from "./wire.ts";

/** Handles one record; a returned promise holds the record's key until it settles. */
export type RecordHandler = (
  tag: number,
  a: number,
  b: number,
  body: Uint8Array,
) => void | Promise<unknown>;

interface Pending {
  tag: number;
  a: number;
  b: number;
  body: Uint8Array;
  slot: number;
  generation: number;
}

/** Callbacks of a {@link KeyExecutor}. */
export interface KeyExecutorHooks {
  /**
   * A ticketed record finished (returned, threw, or its promise settled):
   * `ticket` = slot | generation << 12, `cpuMicros` = time its handler ran
   * synchronously, `startedAt` = epoch ms it started.
   */
  done(ticket: number, cpuMicros: number, startedAt: number): void;
  /** A handler threw or rejected; the record still counts as done. */
  failed(error: unknown, tag: number, key: number): void;
  /** Epoch milliseconds, for the control block. */
  now(): number;
}

/**
 * Runs records per key, in order, never two of one key at once.
 *
 * @example
 * ```ts
 * import { KeyExecutor } from "./key_executor.ts";
 * import { ControlBlock } from "./control_block.ts";
 * import { ClaimTable } from "./claim_table.ts";
 * const seen: number[] = [];
 * const claims = ClaimTable.create();
 * const exec = new KeyExecutor((_tag, a) => { seen.push(a); }, ControlBlock.create(), claims, {
 *   done() {}, failed() {}, now: () => Date.now(),
 * });
 * claims.offer(0, 1);
 * claims.offer(1, 1);
 * exec.submit(5, 1, 1, 0, new Uint8Array(), 0, 1);
 * exec.submit(5, 1, 2, 0, new Uint8Array(), 1, 1);
 * if (seen.join() !== "1,2") throw new Error("out of order");
 * ```
 */
export class KeyExecutor {
  #handler: RecordHandler;
  #control: ControlBlock;
  #claims: ClaimTable;
  #hooks: KeyExecutorHooks;
  /** Keys currently held by an unsettled handler, with the records waiting behind them. */
  #busy = new Map<number, Pending[]>();

  constructor(
    handler: RecordHandler,
    control: ControlBlock,
    claims: ClaimTable,
    hooks: KeyExecutorHooks,
  ) {
    this.#handler = handler;
    this.#control = control;
    this.#claims = claims;
    this.#hooks = hooks;
  }

  /** Number of keys held by an unsettled async handler. */
  get busyKeys(): number {
    return this.#busy.size;
  }

  /**
   * Runs the record now, or queues it behind the running record of the same key.
   * `slot` {@link UNCLAIMED_SLOT} marks a record that needs no claim.
   */
  submit(
    key: number,
    tag: number,
    a: number,
    b: number,
    body: Uint8Array,
    slot: number,
    generation: number,
  ): void {
    if (key !== 0) {
      const waiting = this.#busy.get(key);
      if (waiting !== undefined) {
        waiting.push({ tag, a, b, body, slot, generation });
        if (slot !== UNCLAIMED_SLOT) this.#control.countBlocked(1);
        return;
      }
    }
    this.#run(key, tag, a, b, body, slot, generation);
  }

  #run(
    key: number,
    tag: number,
    a: number,
    b: number,
    body: Uint8Array,
    slot: number,
    generation: number,
  ): void {
    const ticketed = slot !== UNCLAIMED_SLOT;
    if (ticketed && !this.#claims.claim(slot, generation)) return; // taken back: runs elsewhere
    const ticket = ticketed ? ticketOf(slot, generation) : 0;
    if (ticketed) this.#control.countStart();
    let result: void | Promise<unknown>;
    const startedAt = this.#hooks.now();
    this.#control.begin(tag, key, startedAt, ticket);
    try {
      result = this.#handler(tag, a, b, body);
    } catch (error) {
      const cpu = this.#end(startedAt);
      this.#hooks.failed(error, tag, key);
      if (ticketed) this.#hooks.done(ticket, cpu, startedAt);
      return;
    }
    const cpu = this.#end(startedAt);
    if (result === undefined || typeof (result as Promise<unknown>).then !== "function") {
      if (ticketed) this.#hooks.done(ticket, cpu, startedAt);
      return;
    }
    if (key !== 0) this.#busy.set(key, []);
    (result as Promise<unknown>).then(
      () => this.#settled(key, ticketed ? ticket : -1, cpu, startedAt),
      (error) => {
        this.#hooks.failed(error, tag, key);
        this.#settled(key, ticketed ? ticket : -1, cpu, startedAt);
      },
    );
  }

  #end(startedAt: number): number {
    const now = this.#hooks.now();
    this.#control.end(now);
    return Math.min(0xffff_ffff, Math.max(0, Math.round((now - startedAt) * 1000)));
  }

  #settled(key: number, ticket: number, cpu: number, startedAt: number): void {
    if (ticket >= 0) this.#hooks.done(ticket, cpu, startedAt);
    if (key === 0) return;
    const waiting = this.#busy.get(key);
    this.#busy.delete(key);
    if (waiting === undefined) return;
    // Replay the records that queued behind this one; the first async one
    // re-creates the busy entry and the rest queue behind it again.
    for (let i = 0; i < waiting.length; i++) {
      const next = waiting[i]!;
      if (this.#busy.has(key)) {
        this.#busy.get(key)!.push(...waiting.slice(i));
        return;
      }
      if (next.slot !== UNCLAIMED_SLOT) this.#control.countBlocked(-1);
      this.#run(key, next.tag, next.a, next.b, next.body, next.slot, next.generation);
    }
  }
}
