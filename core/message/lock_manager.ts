/**
 * Ordering locks behind `">NAME.cb"`, `">>NAME.cb", ms` and `"<NAME.*"`:
 * contenders queue per lock name and take turns in FIFO order; the holder's
 * callback runs when its turn comes; a hold that is not released expires
 * (default 100 ms) so a crashed holder cannot block the queue.
 *
 * Holders are identified by an opaque `owner` string (the requester's reply
 * address); the manager never looks inside it.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/** A queued or granted request. */
export interface LockRequest {
  /** Who asked (the requester's address). */
  owner: string;
  /** The waitfor id to call on the owner's side when the turn comes. */
  callback: string;
  /** Values sent with the request, passed to the callback. */
  values: unknown;
}

/** A granted turn, as reported to {@link LockManagerOptions.grant}. */
export interface LockGrant extends LockRequest {
  name: string;
  /** Increments per grant of this lock: stale extends and releases are ignored. */
  turn: number;
}

/** Dependencies of a {@link LockManager}. */
export interface LockManagerOptions {
  clock: Clock;
  /** It is `grant.owner`'s turn: call its callback. */
  grant(grant: LockGrant): void;
  /** A hold expired without release (for the log). */
  expired?(grant: LockGrant): void;
  /** Default hold in milliseconds (100). */
  holdMs?: number;
}

interface LockState {
  holder: LockGrant | undefined;
  timer: TimerHandle | undefined;
  waiting: LockRequest[];
  turns: number;
}

/**
 * FIFO locks by name with expiring holds.
 *
 * @example
 * ```ts
 * import { LockManager } from "./lock_manager.ts";
 * import { systemClock } from "../time/mod.ts";
 * const order: string[] = [];
 * const locks = new LockManager({ clock: systemClock, grant: (g) => order.push(g.owner) });
 * locks.acquire("LOGIN", { owner: "a", callback: "cb", values: [] });
 * locks.acquire("LOGIN", { owner: "b", callback: "cb", values: [] });
 * locks.release("LOGIN", "a", "*");
 * locks.release("LOGIN", "b", "*");
 * if (order.join() !== "a,b") throw new Error(order.join());
 * ```
 */
export class LockManager {
  #options: LockManagerOptions;
  #locks = new Map<string, LockState>();

  constructor(options: LockManagerOptions) {
    this.#options = options;
  }

  /** Queues `request` for lock `name`; it is granted at once when the lock is free. */
  acquire(name: string, request: LockRequest): void {
    let state = this.#locks.get(name);
    if (state === undefined) {
      state = { holder: undefined, timer: undefined, waiting: [], turns: 0 };
      this.#locks.set(name, state);
    }
    state.waiting.push(request);
    if (state.holder === undefined) this.#next(name, state);
  }

  /**
   * Extends the current hold of `owner` to `ms` from now. Returns false when
   * `owner` does not hold the lock.
   */
  extend(name: string, owner: string, ms: number): boolean {
    const state = this.#locks.get(name);
    if (state?.holder === undefined || state.holder.owner !== owner) return false;
    this.#arm(name, state, ms);
    return true;
  }

  /**
   * Releases `owner`'s hold (callback `"*"` or the held callback) and grants the
   * next waiter; otherwise cancels `owner`'s waiting requests with that callback
   * (`"*"`: all of them). Returns whether anything changed.
   */
  release(name: string, owner: string, callback: string): boolean {
    const state = this.#locks.get(name);
    if (state === undefined) return false;
    const holder = state.holder;
    if (
      holder !== undefined && holder.owner === owner &&
      (callback === "*" || callback === holder.callback)
    ) {
      this.#end(name, state);
      return true;
    }
    const before = state.waiting.length;
    state.waiting = state.waiting.filter((request) =>
      request.owner !== owner || (callback !== "*" && request.callback !== callback)
    );
    const changed = state.waiting.length !== before;
    this.#forgetIfIdle(name, state);
    return changed;
  }

  /** Drops every hold and waiting request of `owner` (its worker or process is gone). */
  releaseOwner(owner: string): void {
    for (const name of [...this.#locks.keys()]) this.release(name, owner, "*");
    for (const [name, state] of [...this.#locks]) {
      if (state.holder?.owner === owner) this.#end(name, state);
    }
  }

  /** The current holder of `name` and the waiting queue length. */
  inspect(name: string): { holder: LockGrant | undefined; waiting: number } {
    const state = this.#locks.get(name);
    return { holder: state?.holder, waiting: state?.waiting.length ?? 0 };
  }

  /** Number of locks held or waited for. */
  get size(): number {
    return this.#locks.size;
  }

  /** Cancels every timer (shutdown). */
  close(): void {
    for (const state of this.#locks.values()) state.timer?.cancel();
    this.#locks.clear();
  }

  #next(name: string, state: LockState): void {
    const request = state.waiting.shift();
    if (request === undefined) {
      this.#forgetIfIdle(name, state);
      return;
    }
    const grant: LockGrant = { ...request, name, turn: ++state.turns };
    state.holder = grant;
    this.#arm(name, state, this.#options.holdMs ?? 100);
    this.#options.grant(grant);
  }

  #arm(name: string, state: LockState, ms: number): void {
    state.timer?.cancel();
    const grant = state.holder!;
    state.timer = this.#options.clock.setTimeout(() => {
      if (state.holder !== grant) return;
      this.#options.expired?.(grant);
      this.#end(name, state);
    }, ms);
  }

  #end(name: string, state: LockState): void {
    state.timer?.cancel();
    state.timer = undefined;
    state.holder = undefined;
    this.#next(name, state);
  }

  #forgetIfIdle(name: string, state: LockState): void {
    if (state.holder === undefined && state.waiting.length === 0) this.#locks.delete(name);
  }
}
