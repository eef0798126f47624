/**
 * The keeper of the cluster's ordering locks (see `cluster_locks.ts`): which
 * process it is ({@link chooseLockKeeper}), and that process's side — every
 * process of the cluster sends it its lock requests; it keeps them in a
 * {@link BusLocks} and answers each turn with a grant to the asking process.
 *
 * Requests are sent again by their processes (when the keeper changes, and
 * periodically while they wait, in case NATS lost one), so the keeper ignores
 * a request it already has queued: each carries the asking process's token for
 * it as its only value, and the grant carries the token back.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { packValues, unpackData } from "../message/mod.ts";
import type { SignalHeader } from "../pool/wire.ts";
import type { Clock, TimerHandle } from "../time/mod.ts";
import type { EndpointInfo } from "./bus_frames.ts";
import { BusLocks, type LockOwner, lockOwnerKey } from "./bus_locks.ts";

/**
 * The endpoint that keeps the cluster's locks: among `members` that announce
 * `lockKeeperSince`, the oldest, ties broken by the smallest endpoint name.
 *
 * @example
 * ```ts
 * import { chooseLockKeeper } from "./lock_keeper.ts";
 * const member = (endpoint: string, lockKeeperSince?: number) => ({
 *   endpoint,
 *   node: endpoint.split("/")[0]!,
 *   stages: [],
 *   state: "ready" as const,
 *   ...(lockKeeperSince === undefined ? {} : { lockKeeperSince }),
 * });
 * // b/0 and c/0 are the oldest (5): the smaller name wins; 0/0 cannot keep locks.
 * const members = [member("b/0", 5), member("a/0", 9), member("c/0", 5), member("0/0")];
 * const keeper = chooseLockKeeper(members);
 * if (keeper !== "b/0") throw new Error(`keeper ${keeper}`);
 * ```
 */
export function chooseLockKeeper(members: readonly EndpointInfo[]): string | undefined {
  let best: EndpointInfo | undefined;
  for (const member of members) {
    const since = member.lockKeeperSince;
    if (typeof since !== "number") continue;
    if (
      best === undefined || since < best.lockKeeperSince! ||
      (since === best.lockKeeperSince && member.endpoint < best.endpoint)
    ) best = member;
  }
  return best?.endpoint;
}

/** Options of a {@link LockKeeper}. */
export interface LockKeeperOptions {
  /** This process's endpoint: grants say who granted them (`from.at`). */
  endpoint: string;
  clock: Clock;
  log: Logger;
  /**
   * Sends a grant to the process that asked (`owner.at`): `header` carries the
   * lock (`lock.op` "acquire") and `values` the request's token.
   */
  grant(owner: LockOwner, header: SignalHeader, values: Uint8Array): void;
  /**
   * Queue requests without granting for this long first (ms, default 0): a
   * keeper taking over lets the turns its predecessor granted run out.
   */
  graceMs?: number;
}

/** A lock request's token: the asking process's number for it. */
export function lockToken(token: number): Uint8Array {
  return packValues([token]).bytes;
}

/**
 * Reads a token written by {@link lockToken}; undefined when `values` hold none.
 *
 * @example
 * ```ts
 * import { lockToken, readLockToken } from "./lock_keeper.ts";
 * if (readLockToken(lockToken(7)) !== 7) throw new Error("token lost");
 * if (readLockToken(new Uint8Array([1, 2])) !== undefined) throw new Error("not a token");
 * ```
 */
export function readLockToken(values: Uint8Array): number | undefined {
  try {
    const [token] = unpackData(values);
    return typeof token === "number" ? token : undefined;
  } catch {
    return undefined;
  }
}

interface Waiting {
  name: string;
  callback: string;
}

/**
 * The cluster's locks, kept by one process.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { LockKeeper, lockToken, readLockToken } from "./lock_keeper.ts";
 * import { systemClock } from "../time/mod.ts";
 * const grants: string[] = [];
 * const keeper = new LockKeeper({
 *   endpoint: "eu-1/0",
 *   clock: systemClock,
 *   log: getLogger(["stage", "cluster"]),
 *   grant: (owner, _header, token) => grants.push(`${owner.at}#${readLockToken(token)}`),
 * });
 * const acquire = {
 *   stage: "bank",
 *   scope: "one" as const,
 *   message: "turn",
 *   from: { stage: "bank", worker: 0, at: "us-1/0" },
 *   lock: { op: "acquire" as const, name: "BANK", callback: "turn" },
 * };
 * keeper.handle(acquire, lockToken(1)); // granted at once: the lock was free
 * keeper.handle({ ...acquire, from: { ...acquire.from, worker: 1 } }, lockToken(2));
 * keeper.handle({ ...acquire, from: { ...acquire.from, worker: 1 } }, lockToken(2)); // a repeat
 * if (keeper.inspect("BANK").waiting !== 1) throw new Error("the repeat was queued");
 * keeper.releaseEndpoint("us-1/0"); // us-1/0 left: its turn and its wait go
 * keeper.close();
 * if (grants.join() !== "us-1/0#1") throw new Error(grants.join());
 * ```
 */
export class LockKeeper {
  #options: LockKeeperOptions;
  #locks: BusLocks;
  /** Requests queued and not granted yet: owner key → token → what for (to ignore repeats). */
  #waiting = new Map<string, Map<number, Waiting>>();
  /** Owner keys by process, to drop a process's requests when it leaves. */
  #owners = new Map<string, Set<string>>();
  /** Requests taken during the grace period, handled in order when it ends. */
  #held: { header: SignalHeader; values: Uint8Array }[] | undefined;
  #grace: TimerHandle | undefined;

  constructor(options: LockKeeperOptions) {
    this.#options = options;
    this.#locks = new BusLocks(options.clock, options.log, (owner, header, _body, lock) => {
      const owned = this.#waiting.get(lockOwnerKey(owner));
      const token = readLockToken(lock.values);
      if (token !== undefined) owned?.delete(token);
      options.grant(owner, {
        ...header,
        lock: { op: "acquire", name: lock.name, callback: header.message },
        from: { ...header.from, at: options.endpoint },
      }, lock.values);
    });
    const graceMs = options.graceMs ?? 0;
    if (graceMs > 0) {
      this.#held = [];
      this.#grace = options.clock.setTimeout(() => {
        const held = this.#held ?? [];
        this.#held = undefined;
        for (const { header, values } of held) this.#handle(header, values);
      }, graceMs);
    }
  }

  /**
   * Handles a lock request from any process of the cluster (`from.at` names
   * it; an acquire's values are its token).
   */
  handle(header: SignalHeader, values: Uint8Array): void {
    if (this.#held !== undefined) this.#held.push({ header, values: values.slice() });
    else this.#handle(header, values);
  }

  /** The holder of lock `name` (owner key, callback) and how many wait for it. */
  inspect(name: string): { holder?: { owner: string; callback: string }; waiting: number } {
    return this.#locks.inspect(name);
  }

  /** Drops the holds and waiting requests of the process `endpoint` (it left the cluster). */
  releaseEndpoint(endpoint: string): void {
    const owners = this.#owners.get(endpoint);
    if (owners === undefined) return;
    this.#owners.delete(endpoint);
    // Its waits first, so that ending its holds grants none of them.
    for (const owner of owners) {
      for (const { name } of this.#waiting.get(owner)?.values() ?? []) {
        if (this.#locks.inspect(name).holder?.owner !== owner) {
          this.#locks.handle({
            stage: "",
            scope: "one",
            message: "*",
            from: JSON.parse(owner),
            lock: { op: "release", name, callback: "*" },
          }, new Uint8Array(0));
        }
      }
      this.#waiting.delete(owner);
    }
    for (const owner of owners) this.#locks.releaseOwner(owner);
  }

  /** Stops the timers and forgets every lock. */
  close(): void {
    this.#grace?.cancel();
    this.#held = undefined;
    this.#locks.close();
  }

  #handle(header: SignalHeader, values: Uint8Array): void {
    const lock = header.lock!;
    const at = header.from.at;
    if (at === undefined) {
      this.#options.log.warning("Lock request for {name} without its process; ignored", {
        name: lock.name,
      });
      return;
    }
    const owner = lockOwnerKey(header.from);
    if (lock.op === "acquire") {
      const token = readLockToken(values);
      if (token === undefined) {
        this.#options.log.warning("Lock request for {name} from {at} has no token; ignored", {
          name: lock.name,
          at,
        });
        return;
      }
      let owned = this.#waiting.get(owner);
      if (owned === undefined) {
        owned = new Map();
        this.#waiting.set(owner, owned);
        let owners = this.#owners.get(at);
        if (owners === undefined) this.#owners.set(at, owners = new Set());
        owners.add(owner);
      }
      if (owned.has(token)) return; // a repeat of a request still queued
      owned.set(token, { name: lock.name, callback: lock.callback });
    } else if (lock.op === "release") {
      // A release that does not end the owner's hold cancels its waiting requests.
      const holder = this.#locks.inspect(lock.name).holder;
      const ends = holder !== undefined && holder.owner === owner &&
        (lock.callback === "*" || lock.callback === holder.callback);
      const owned = this.#waiting.get(owner);
      if (!ends && owned !== undefined) {
        for (const [token, waiting] of owned) {
          if (
            waiting.name === lock.name &&
            (lock.callback === "*" || lock.callback === waiting.callback)
          ) owned.delete(token);
        }
      }
    }
    this.#locks.handle(header, values);
  }
}
