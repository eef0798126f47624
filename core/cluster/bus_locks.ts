/**
 * Ordering locks (`">NAME.cb"`, `">>NAME.cb", ms`, `"<NAME.*"`) as a bus keeps
 * them: one {@link LockManager} for everyone the bus reaches, so a lock is
 * service-wide. The in-process bus keeps one for its process; the local hub
 * one for every process on the machine; with `#cluster`, the cluster's lock
 * keeper (see `cluster_locks.ts`) one for every process of the cluster.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { LockManager } from "../message/mod.ts";
import { encodeSignal, type SignalHeader } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";

/** Where a lock grant goes: the caller's stage, worker and process. */
export type LockOwner = SignalHeader["from"];

/** What a grant was for: the lock's name and the values its request carried. */
export interface GrantedLock {
  name: string;
  values: Uint8Array;
}

/** The default hold of a lock (ms): an unreleased turn ends after it. */
export const LOCK_HOLD_MS = 100;

/**
 * The key a {@link LockManager} knows an owner by: its stage, worker and
 * process (`at`; absent in the process that asked).
 *
 * @example
 * ```ts
 * import { lockOwnerKey } from "./bus_locks.ts";
 * const key = lockOwnerKey({ stage: "bank", worker: 2, at: "eu-1/0" });
 * if (key !== '{"stage":"bank","worker":2,"at":"eu-1/0"}') throw new Error(key);
 * ```
 */
export function lockOwnerKey(from: LockOwner): string {
  const { stage, worker, at } = from;
  return JSON.stringify(at === undefined ? { stage, worker } : { stage, worker, at });
}

/**
 * The locks of one bus.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { BusLocks } from "./bus_locks.ts";
 * import { systemClock } from "../time/mod.ts";
 * const granted: string[] = [];
 * const locks = new BusLocks(systemClock, getLogger(["stage", "cluster"]), (owner, header) => {
 *   granted.push(`${owner.stage}/${owner.worker}:${header.message}`);
 * });
 * const ask = (worker: number, op: "acquire" | "release") =>
 *   locks.handle({
 *     stage: "bank",
 *     scope: "one",
 *     message: "turn",
 *     from: { stage: "bank", worker },
 *     lock: { op, name: "BANK", callback: "turn" },
 *   }, new Uint8Array(0));
 * ask(0, "acquire");
 * ask(1, "acquire");
 * ask(0, "release");
 * locks.close();
 * if (granted.join() !== "bank/0:turn,bank/1:turn") throw new Error(granted.join());
 * ```
 */
export class BusLocks {
  #locks: LockManager;

  /**
   * @param deliver sends a grant (the owner's callback with its values) to the
   *   owner; `lock` says which lock and the request's own values
   */
  constructor(
    clock: Clock,
    log: Logger,
    deliver: (
      owner: LockOwner,
      header: SignalHeader,
      body: Uint8Array,
      lock: GrantedLock,
    ) => void,
  ) {
    this.#locks = new LockManager({
      clock,
      holdMs: LOCK_HOLD_MS,
      // The owner's turn: call its callback on the worker that asked, with its values.
      grant: (grant) => {
        const owner = JSON.parse(grant.owner) as LockOwner;
        const header: SignalHeader = {
          stage: owner.stage,
          scope: "one",
          worker: owner.worker,
          ...(owner.at === undefined ? {} : { to: owner.at }),
          message: grant.callback,
          from: { stage: owner.stage, worker: owner.worker },
        };
        const values = grant.values as Uint8Array;
        deliver(owner, header, encodeSignal(header, values), { name: grant.name, values });
      },
      expired: (grant) =>
        log.warning("Lock {name} held by {owner} expired without release", {
          name: grant.name,
          owner: grant.owner,
        }),
    });
  }

  /** Handles a lock request (a message whose header has `lock`); `values` are its packed values. */
  handle(header: SignalHeader, values: Uint8Array): void {
    const lock = header.lock!;
    const owner = lockOwnerKey(header.from);
    if (lock.op === "acquire") {
      this.#locks.acquire(lock.name, { owner, callback: lock.callback, values: values.slice() });
    } else if (lock.op === "extend") {
      this.#locks.extend(lock.name, owner, lock.ms ?? LOCK_HOLD_MS);
    } else {
      this.#locks.release(lock.name, owner, lock.callback);
    }
  }

  /**
   * The holder of lock `name` (its owner key and callback) and how many wait
   * for it.
   */
  inspect(name: string): { holder?: { owner: string; callback: string }; waiting: number } {
    const { holder, waiting } = this.#locks.inspect(name);
    return holder === undefined
      ? { waiting }
      : { holder: { owner: holder.owner, callback: holder.callback }, waiting };
  }

  /** Drops every hold and waiting request of the owner with key `owner` (its process is gone). */
  releaseOwner(owner: string): void {
    this.#locks.releaseOwner(owner);
  }

  /** Stops expiry timers. */
  close(): void {
    this.#locks.close();
  }
}
