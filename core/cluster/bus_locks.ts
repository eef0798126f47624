/**
 * Ordering locks (`">NAME.cb"`, `">>NAME.cb", ms`, `"<NAME.*"`) as a bus keeps
 * them: one {@link LockManager} for everyone the bus reaches, so a lock is
 * service-wide. The in-process bus keeps one for its process; the local hub
 * one for every process on the machine.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { LockManager } from "../message/mod.ts";
import { encodeSignal, type SignalHeader } from "../pool/wire.ts";
import type { Clock } from "../time/mod.ts";

/** Where a lock grant goes: the caller's stage, worker and process. */
export type LockOwner = SignalHeader["from"];

/** The locks of one bus. */
export class BusLocks {
  #locks: LockManager;

  /** @param deliver sends a grant (the owner's callback with its values) to the owner */
  constructor(
    clock: Clock,
    log: Logger,
    deliver: (owner: LockOwner, header: SignalHeader, body: Uint8Array) => void,
  ) {
    this.#locks = new LockManager({
      clock,
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
        deliver(owner, header, encodeSignal(header, grant.values as Uint8Array));
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
    const { stage, worker, at } = header.from;
    const owner = JSON.stringify(at === undefined ? { stage, worker } : { stage, worker, at });
    if (lock.op === "acquire") {
      this.#locks.acquire(lock.name, { owner, callback: lock.callback, values: values.slice() });
    } else if (lock.op === "extend") {
      this.#locks.extend(lock.name, owner, lock.ms ?? 100);
    } else {
      this.#locks.release(lock.name, owner, lock.callback);
    }
  }

  /** Stops expiry timers. */
  close(): void {
    this.#locks.close();
  }
}
