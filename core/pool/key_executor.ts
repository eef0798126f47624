/**
 * Worker-side execution in key order: records with the same non-zero key run one
 * at a time in arrival order (an async handler holds its key until its promise
 * settles); key 0 means "no ordering" and runs at once.
 *
 * @module
 */
import type { ControlBlock } from "./control_block.ts";

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
}

/** Callbacks of a {@link KeyExecutor}. */
export interface KeyExecutorHooks {
  /** A record finished (returned, threw, or its promise settled). */
  done(key: number, tag: number): void;
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
 * const seen: number[] = [];
 * const exec = new KeyExecutor((_tag, a) => { seen.push(a); }, ControlBlock.create(), {
 *   done() {}, failed() {}, now: () => Date.now(),
 * });
 * exec.submit(5, 1, 1, 0, new Uint8Array());
 * exec.submit(5, 1, 2, 0, new Uint8Array());
 * if (seen.join() !== "1,2") throw new Error("out of order");
 * ```
 */
export class KeyExecutor {
  #handler: RecordHandler;
  #control: ControlBlock;
  #hooks: KeyExecutorHooks;
  /** Keys currently held by an unsettled handler, with the records waiting behind them. */
  #busy = new Map<number, Pending[]>();

  constructor(handler: RecordHandler, control: ControlBlock, hooks: KeyExecutorHooks) {
    this.#handler = handler;
    this.#control = control;
    this.#hooks = hooks;
  }

  /** Number of keys held by an unsettled async handler. */
  get busyKeys(): number {
    return this.#busy.size;
  }

  /** Runs the record now, or queues it behind the running record of the same key. */
  submit(key: number, tag: number, a: number, b: number, body: Uint8Array): void {
    if (key !== 0) {
      const waiting = this.#busy.get(key);
      if (waiting !== undefined) {
        waiting.push({ tag, a, b, body });
        return;
      }
    }
    this.#run(key, tag, a, b, body);
  }

  #run(key: number, tag: number, a: number, b: number, body: Uint8Array): void {
    let result: void | Promise<unknown>;
    this.#control.begin(tag, key, this.#hooks.now());
    try {
      result = this.#handler(tag, a, b, body);
    } catch (error) {
      this.#control.end();
      this.#hooks.failed(error, tag, key);
      this.#hooks.done(key, tag);
      return;
    }
    this.#control.end();
    if (result === undefined || typeof (result as Promise<unknown>).then !== "function") {
      this.#hooks.done(key, tag);
      return;
    }
    if (key !== 0) this.#busy.set(key, []);
    (result as Promise<unknown>).then(
      () => this.#settled(key, tag),
      (error) => {
        this.#hooks.failed(error, tag, key);
        this.#settled(key, tag);
      },
    );
  }

  #settled(key: number, tag: number): void {
    this.#hooks.done(key, tag);
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
      this.#run(key, next.tag, next.a, next.b, next.body);
    }
  }
}
