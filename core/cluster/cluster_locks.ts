/**
 * Ordering locks across the cluster (`#cluster.nats`): one process keeps the
 * locks of every process of every machine, so `">NAME.cb"` takes turns
 * cluster-wide.
 *
 * - **The keeper** is chosen, not elected: of the endpoints that announce
 *   {@link EndpointInfo.lockKeeperSince} (every supervised process with
 *   `#cluster`), the oldest, then the smallest name (`chooseLockKeeper`).
 *   Every process computes it from its own membership view (this machine's
 *   endpoints from the hub, the others' from their NATS leases), so they agree
 *   once their views do, and a restarted process (the youngest) never takes
 *   the role back from a running one.
 * - **Requests** (acquire, extend, release) go to the keeper as stage messages
 *   with `to` = the keeper, over NATS or through the hub when it is on this
 *   machine, handled in place when it is this process. An acquire carries only
 *   a token: its values stay with the asking process, which delivers them with
 *   the grant (so no script value ever travels for a lock).
 * - **Grants** come back to the asking process as messages with `lock` set
 *   and `worker` (the asker's) set, `from.at` naming the keeper. A grant from
 *   a keeper the request is not (or no longer) queued at is released at once.
 * - **The keeper changes** (its lease ended, it said goodbye): the new keeper
 *   waits one default hold (100 ms) before granting, so turns its predecessor
 *   granted run out first; every process sends its waiting acquires again, in
 *   their order, to the new keeper. Holds kept by the old keeper are lost (they
 *   would expire within their hold anyway); the FIFO order between processes
 *   is the order the re-sent requests reach the new keeper.
 * - **Lost requests** (NATS delivers at most once): a process re-sends its
 *   waiting acquires every `resendMs`; the keeper ignores one it already has
 *   queued, so a waiter never hangs on a lost message.
 * - **NATS down**: other machines' leases run out (3 s), and this machine's
 *   processes choose a keeper among themselves: until NATS is back each side
 *   of a partition keeps its own locks (machine-wide), then they agree again.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { encodeSignal, type SignalHeader } from "../pool/wire.ts";
import type { Clock, TimerHandle } from "../time/mod.ts";
import type { EndpointInfo } from "./bus_frames.ts";
import { LOCK_HOLD_MS, lockOwnerKey } from "./bus_locks.ts";
import { chooseLockKeeper, LockKeeper, lockToken, readLockToken } from "./lock_keeper.ts";

/** How often waiting acquires are sent again to the keeper, by default (ms). */
export const LOCK_RESEND_MS = 1000;

/**
 * Requests that reach a process before it sees itself as the keeper (their
 * senders saw the change first) are kept this long (ms) for when it does.
 */
const EARLY_MS = 3000;
/** At most this many early requests are kept. */
const EARLY_MAX = 10_000;

/** Options of {@link ClusterLocks}. */
export interface ClusterLocksOptions {
  /** This process's endpoint. */
  endpoint: string;
  clock: Clock;
  log: Logger;
  /** Everyone who may keep the locks: this process's info and its peers' (primary cluster). */
  members(): readonly EndpointInfo[];
  /** Sends a laid-out stage message to another process; returns why it could not, if so. */
  send(endpoint: string, message: Uint8Array): string | undefined;
  /** Delivers a grant (the caller's callback with its values) to a stage of this process. */
  deliver(header: SignalHeader, body: Uint8Array): void;
  /** See {@link LOCK_RESEND_MS}. */
  resendMs?: number;
}

interface Pending {
  name: string;
  owner: string;
  callback: string;
  /** The request as the caller sent it (stamped with this process). */
  header: SignalHeader;
  /** The caller's values, for its callback. */
  values: Uint8Array;
  /** The keeper it is queued at (undefined: not sent yet, the send failed). */
  keeper: string | undefined;
}

/**
 * This process's side of the cluster's locks, and the keeper's when it is this process.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { ClusterLocks } from "./cluster_locks.ts";
 * import { systemClock } from "../time/mod.ts";
 * // A cluster of one: this process keeps the locks, and its callbacks run at once.
 * const turns: string[] = [];
 * const locks = new ClusterLocks({
 *   endpoint: "eu-1/0",
 *   clock: systemClock,
 *   log: getLogger(["stage", "cluster"]),
 *   members: () => [{ endpoint: "eu-1/0", node: "eu-1", stages: [], state: "ready", lockKeeperSince: 0 }],
 *   send: () => "no other process",
 *   deliver: (header) => turns.push(`${header.worker}:${header.message}`),
 * });
 * const lock = (worker: number, op: "acquire" | "release") =>
 *   locks.request({
 *     stage: "bank",
 *     scope: "one",
 *     message: "turn",
 *     from: { stage: "bank", worker },
 *     lock: { op, name: "BANK", callback: op === "acquire" ? "turn" : "*" },
 *   }, new Uint8Array(0));
 * lock(0, "acquire");
 * lock(1, "acquire");
 * lock(0, "release");
 * locks.close();
 * if (locks.keeper !== "eu-1/0" || turns.join() !== "0:turn,1:turn") throw new Error(turns.join());
 * ```
 */
export class ClusterLocks {
  #options: ClusterLocksOptions;
  #keeper: string | undefined;
  #keeping: LockKeeper | undefined;
  #pending = new Map<number, Pending>();
  /** Requests for a keeper this process is not (yet): handled if it becomes it soon. */
  #early: { header: SignalHeader; values: Uint8Array; at: number }[] = [];
  /**
   * A random start: a process restarted under the same endpoint name never
   * reuses a token its predecessor may still have queued at the keeper.
   */
  #nextToken = Math.floor(Math.random() * 2 ** 48);
  /** Turns this process holds as far as it knows: lock + owner → callback, until (clock ms). */
  #holds = new Map<string, { callback: string; until: number }>();
  #resend: TimerHandle;

  constructor(options: ClusterLocksOptions) {
    this.#options = options;
    this.#resend = options.clock.setInterval(() => {
      for (const [token, pending] of this.#pending) this.#sendAcquire(token, pending);
      const now = options.clock.now();
      for (const [key, hold] of this.#holds) if (hold.until <= now) this.#holds.delete(key);
      this.#early = this.#early.filter((early) => early.at > now - EARLY_MS);
    }, options.resendMs ?? LOCK_RESEND_MS);
    this.refresh();
  }

  /** The endpoint that keeps the locks now, as this process sees it. */
  get keeper(): string | undefined {
    return this.#keeper;
  }

  /** When this process keeps the locks: lock `name`'s holder and waiting count; else undefined. */
  inspect(
    name: string,
  ): { holder?: { owner: string; callback: string }; waiting: number } | undefined {
    return this.#keeping?.inspect(name);
  }

  /** Routes a lock request of a stage of this process (`header.lock` set). */
  request(header: SignalHeader, values: Uint8Array): void {
    const stamped: SignalHeader = {
      ...header,
      from: { ...header.from, at: this.#options.endpoint },
    };
    const lock = header.lock!;
    const owner = lockOwnerKey(stamped.from);
    const key = `${lock.name}\n${owner}`;
    if (lock.op === "acquire") {
      const token = ++this.#nextToken;
      const pending: Pending = {
        name: lock.name,
        owner,
        callback: lock.callback,
        header: stamped,
        values: values.slice(),
        keeper: undefined,
      };
      this.#pending.set(token, pending);
      this.#sendAcquire(token, pending);
      return;
    }
    const hold = this.#holds.get(key);
    const holding = hold !== undefined && hold.until > this.#options.clock.now();
    if (lock.op === "extend") {
      if (holding) hold.until = this.#options.clock.now() + (lock.ms ?? LOCK_HOLD_MS);
    } else if (holding && (lock.callback === "*" || lock.callback === hold.callback)) {
      this.#holds.delete(key);
    } else {
      // Not holding: the release cancels waiting requests (as the keeper does).
      if (!holding) this.#holds.delete(key);
      for (const [token, pending] of this.#pending) {
        if (
          pending.name === lock.name && pending.owner === owner &&
          (lock.callback === "*" || lock.callback === pending.callback)
        ) this.#pending.delete(token);
      }
    }
    this.#toKeeper(stamped, new Uint8Array(0));
  }

  /**
   * Takes a lock message from another process: a request for this keeper
   * (no `worker`) or a grant for a stage here (`worker` set).
   */
  arrived(header: SignalHeader, values: Uint8Array): void {
    if (header.worker !== undefined) {
      this.#granted(header, values);
    } else if (this.#keeping !== undefined) {
      this.#keeping.handle(header, values);
    } else if (this.#early.length < EARLY_MAX) {
      // Its sender sees this process as the keeper: it saw a change first (it is kept for when
      // this process sees it too), or it lags (it re-sends once it sees the new keeper).
      this.#early.push({ header, values: values.slice(), at: this.#options.clock.now() });
    }
  }

  /** The membership changed: chooses the keeper again (and moves waiting requests to a new one). */
  refresh(): void {
    const keeper = chooseLockKeeper(this.#options.members());
    if (keeper === this.#keeper) return;
    const previous = this.#keeper;
    this.#keeper = keeper;
    const self = this.#options.endpoint;
    if (previous === self) {
      this.#keeping?.close();
      this.#keeping = undefined;
    }
    if (keeper === self) {
      this.#keeping = new LockKeeper({
        endpoint: self,
        clock: this.#options.clock,
        log: this.#options.log,
        // Taking over: the turns the previous keeper granted run out first.
        graceMs: previous === undefined ? 0 : LOCK_HOLD_MS,
        grant: (owner, header, token) => {
          if (owner.at === self) this.#granted(header, token);
          else this.#send(owner.at!, encodeSignal(header, token));
        },
      });
      const since = this.#options.clock.now() - EARLY_MS;
      for (const early of this.#early) {
        if (early.at > since) this.#keeping.handle(early.header, early.values);
      }
    }
    this.#early = [];
    if (previous !== undefined) {
      this.#options.log.info(
        "Lock keeper is now {keeper} (was {previous}); {count} waiting lock requests sent to it",
        { keeper: keeper ?? "nobody", previous, count: this.#pending.size },
      );
    }
    for (const [token, pending] of this.#pending) this.#sendAcquire(token, pending);
  }

  /** Processes left the cluster: the keeper drops their holds and waiting requests. */
  gone(endpoints: Iterable<string>): void {
    for (const endpoint of endpoints) this.#keeping?.releaseEndpoint(endpoint);
    this.refresh();
  }

  /** Stops the timers and forgets every lock. */
  close(): void {
    this.#resend.cancel();
    this.#keeping?.close();
    this.#keeping = undefined;
    this.#pending.clear();
    this.#holds.clear();
  }

  #sendAcquire(token: number, pending: Pending): void {
    // Set first: a keeper in this process grants at once, and checks where it was sent.
    const previous = pending.keeper;
    pending.keeper = this.#keeper;
    const sent = this.#toKeeper(pending.header, lockToken(token)) !== undefined;
    // A failed repeat to the same keeper leaves the request queued there.
    if (!sent && previous !== this.#keeper) pending.keeper = undefined;
  }

  /** Sends a request to the keeper; returns the keeper when it went out. */
  #toKeeper(header: SignalHeader, values: Uint8Array): string | undefined {
    const keeper = this.#keeper;
    if (keeper === undefined) return undefined;
    if (keeper === this.#options.endpoint) {
      this.#keeping!.handle(header, values);
      return keeper;
    }
    return this.#send(keeper, encodeSignal({ ...header, to: keeper }, values)) ? keeper : undefined;
  }

  #send(endpoint: string, message: Uint8Array): boolean {
    const failed = this.#options.send(endpoint, message);
    if (failed === undefined) return true;
    this.#options.log.debug("Lock message to {endpoint} not sent: {why}", {
      endpoint,
      why: failed,
    });
    return false;
  }

  /** A grant for a stage of this process: its callback runs with the values it queued with. */
  #granted(header: SignalHeader, values: Uint8Array): void {
    const lock = header.lock!;
    const token = readLockToken(values);
    const pending = token === undefined ? undefined : this.#pending.get(token);
    const keeper = header.from.at;
    if (pending === undefined || pending.keeper !== keeper || pending.name !== lock.name) {
      // Cancelled meanwhile, a repeat, or from a keeper it is no longer queued at: give it back.
      if (keeper === undefined) return;
      const release: SignalHeader = {
        stage: header.stage,
        scope: "one",
        message: lock.callback,
        from: { stage: header.stage, worker: header.worker!, at: this.#options.endpoint },
        lock: { op: "release", name: lock.name, callback: lock.callback },
      };
      if (keeper === this.#options.endpoint) this.#keeping?.handle(release, new Uint8Array(0));
      else this.#send(keeper, encodeSignal({ ...release, to: keeper }, new Uint8Array(0)));
      return;
    }
    this.#pending.delete(token!);
    this.#holds.set(`${lock.name}\n${pending.owner}`, {
      callback: pending.callback,
      until: this.#options.clock.now() + LOCK_HOLD_MS,
    });
    const grant: SignalHeader = {
      stage: header.stage,
      scope: "one",
      worker: header.worker!,
      message: pending.callback,
      from: { stage: header.stage, worker: header.worker! },
    };
    this.#options.deliver(grant, encodeSignal(grant, pending.values));
  }
}
