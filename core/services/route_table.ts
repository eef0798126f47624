/**
 * The subscription table of the route service (DESIGN.md §5), as pure logic:
 * who subscribed to which id with which callback, who is paused until when,
 * whose subscriptions expire when, and whose turn it is next. No messaging:
 * the route service asks it and does the sending.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/** A subscriber: one worker of one stage (the sender of its `route:@` messages). */
export interface SubscriberRef {
  readonly stage: string;
  readonly worker: number;
  /** Its process, when it is not the route stage's (a bus endpoint). */
  readonly at?: string;
}

/** A live, unpaused subscriber of an id: who to ask, and where a delivery goes. */
export interface Candidate {
  /** The subscriber's table key (`"stage/worker"`). */
  readonly key: string;
  readonly subscriber: SubscriberRef;
  /** The subscriber's waitfor id for messages of this subscribe id. */
  readonly callback: string;
  /** Whether to ask it first (false once it answered that it has no `route:@` handler). */
  readonly probe: boolean;
}

/** How long a subscription lives without renewal (ms). */
export const SUBSCRIPTION_EXPIRY_MS = 30_000;

/** Options of a {@link RouteTable}. */
export interface RouteTableOptions {
  /** Subscriptions expire this long after the subscriber's last subscribe or renew (ms). */
  expiryMs?: number;
}

interface Entry {
  readonly subscriber: SubscriberRef;
  /** Subscribe id → callback id, in subscription order. */
  readonly subscriptions: Map<string, string>;
  expiresAt: number;
  /** Paused until then (0: not paused; Infinity: until resumed). */
  pausedUntil: number;
  probe: boolean;
}

interface Topic {
  /** Subscriber keys in subscription order (the round robin order). */
  readonly keys: Set<string>;
  /** The key the last message went to. */
  last?: string;
}

/** A subscriber's table key. */
export function subscriberKey(subscriber: SubscriberRef): string {
  const here = `${subscriber.stage}/${subscriber.worker}`;
  return subscriber.at === undefined ? here : `${here}@${subscriber.at}`;
}

/** Where a message to one of a subscriber's waitfors goes. */
export function subscriberAddress(
  subscriber: SubscriberRef,
  id: string,
): { stage: string; worker: number; id: string; at?: string } {
  const { stage, worker, at } = subscriber;
  return at === undefined ? { stage, worker, id } : { stage, worker, id, at };
}

/**
 * Subscriptions by subscriber and by subscribe id, with pauses, expiry and a
 * round robin cursor per id. Expired subscribers are dropped when met and by a
 * sweep every expiry period; dispose the table to stop the sweep.
 *
 * @example
 * ```ts
 * import { RouteTable } from "./route_table.ts";
 * import { systemClock } from "../time/mod.ts";
 * using table = new RouteTable(systemClock);
 * table.subscribe({ stage: "chat", worker: 0 }, { room: "on_room" });
 * if (table.candidates("room")[0]?.callback !== "on_room") throw new Error("not subscribed");
 * ```
 */
export class RouteTable implements Disposable {
  #clock: Clock;
  #expiryMs: number;
  #entries = new Map<string, Entry>();
  #topics = new Map<string, Topic>();
  #sweeper: TimerHandle;

  /** @throws RangeError for an expiry that is not a positive number of ms */
  constructor(clock: Clock, options: RouteTableOptions = {}) {
    const expiryMs = options.expiryMs ?? SUBSCRIPTION_EXPIRY_MS;
    if (!Number.isFinite(expiryMs) || expiryMs <= 0) {
      throw new RangeError(`RouteTable: expiryMs must be a positive number; got ${expiryMs}`);
    }
    this.#clock = clock;
    this.#expiryMs = expiryMs;
    this.#sweeper = clock.setInterval(() => this.sweep(), expiryMs);
  }

  /** Subscribers with at least one live subscription. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Applies `changes` (subscribe id → callback id, or `null` to unsubscribe that
   * id) and renews every subscription of the subscriber; it is asked again
   * before deliveries (even if it earlier had no `route:@` handler).
   */
  subscribe(subscriber: SubscriberRef, changes: Readonly<Record<string, string | null>>): void {
    const key = subscriberKey(subscriber);
    let entry = this.#live(key);
    if (entry === undefined) {
      entry = {
        subscriber: { stage: subscriber.stage, worker: subscriber.worker },
        subscriptions: new Map(),
        expiresAt: 0,
        pausedUntil: 0,
        probe: true,
      };
    }
    for (const [id, callback] of Object.entries(changes)) {
      if (callback === null) {
        entry.subscriptions.delete(id);
        this.#leaveTopic(id, key);
      } else {
        entry.subscriptions.set(id, callback);
        let topic = this.#topics.get(id);
        if (topic === undefined) this.#topics.set(id, topic = { keys: new Set() });
        topic.keys.add(key);
      }
    }
    entry.expiresAt = this.#clock.now() + this.#expiryMs;
    entry.probe = true;
    if (entry.subscriptions.size > 0) this.#entries.set(key, entry);
    else this.#entries.delete(key);
  }

  /** Renews every subscription of the subscriber and resumes it; false if it has none. */
  renew(subscriber: SubscriberRef): boolean {
    const entry = this.#live(subscriberKey(subscriber));
    if (entry === undefined) return false;
    entry.expiresAt = this.#clock.now() + this.#expiryMs;
    entry.pausedUntil = 0;
    return true;
  }

  /** Pauses the subscriber for `ms` (default: until renewed); false if it has no subscriptions. */
  pause(subscriber: SubscriberRef, ms = Infinity): boolean {
    const entry = this.#live(subscriberKey(subscriber));
    if (entry === undefined) return false;
    entry.pausedUntil = this.#clock.now() + Math.max(0, ms);
    return true;
  }

  /** Unsubscribes the subscriber from `id`; returns whether it was subscribed. */
  unsubscribe(subscriber: SubscriberRef, id: string): boolean {
    const key = subscriberKey(subscriber);
    const entry = this.#live(key);
    if (entry === undefined || !entry.subscriptions.delete(id)) return false;
    this.#leaveTopic(id, key);
    if (entry.subscriptions.size === 0) this.#entries.delete(key);
    return true;
  }

  /** Unsubscribes the subscriber from everything; returns whether it had subscriptions. */
  remove(subscriber: SubscriberRef): boolean {
    const key = subscriberKey(subscriber);
    const entry = this.#live(key);
    if (entry === undefined) return false;
    this.#drop(key, entry);
    return true;
  }

  /** Remembers that the subscriber has no `route:@` handler: it is not asked until it subscribes again. */
  noProbe(subscriber: SubscriberRef): void {
    const entry = this.#live(subscriberKey(subscriber));
    if (entry !== undefined) entry.probe = false;
  }

  /** The live, unpaused subscribers of `id`, in round robin order. */
  candidates(id: string): Candidate[] {
    const topic = this.#topics.get(id);
    if (topic === undefined) return [];
    const now = this.#clock.now();
    const found: Candidate[] = [];
    for (const key of [...topic.keys]) {
      const entry = this.#live(key);
      const callback = entry?.subscriptions.get(id);
      if (entry === undefined || callback === undefined || entry.pausedUntil > now) continue;
      found.push({ key, subscriber: entry.subscriber, callback, probe: entry.probe });
    }
    return found;
  }

  /** The subscriber's callback for `id` if it is subscribed to it now (live, paused or not). */
  callbackOf(subscriber: SubscriberRef, id: string): string | undefined {
    return this.#live(subscriberKey(subscriber))?.subscriptions.get(id);
  }

  /** The subscriber's subscriptions (subscribe id → callback), or undefined if it has none. */
  subscriptionsOf(subscriber: SubscriberRef): Record<string, string> | undefined {
    const entry = this.#live(subscriberKey(subscriber));
    return entry === undefined ? undefined : Object.fromEntries(entry.subscriptions);
  }

  /**
   * Picks the next of `willing` (candidate keys of `id`) after the one the last
   * message of `id` went to, in subscription order, and moves the cursor to it.
   */
  choose(id: string, willing: ReadonlySet<string>): string | undefined {
    const topic = this.#topics.get(id);
    if (topic === undefined || willing.size === 0) return undefined;
    const order = [...topic.keys];
    const start = topic.last === undefined ? 0 : order.indexOf(topic.last) + 1;
    for (let i = 0; i < order.length; i++) {
      const key = order[(start + i) % order.length]!;
      if (willing.has(key)) {
        topic.last = key;
        return key;
      }
    }
    return undefined;
  }

  /** Drops every expired subscriber; returns how many. */
  sweep(): number {
    const now = this.#clock.now();
    let dropped = 0;
    for (const [key, entry] of [...this.#entries]) {
      if (entry.expiresAt > now) continue;
      this.#drop(key, entry);
      dropped++;
    }
    return dropped;
  }

  /** Stops the sweep timer. */
  [Symbol.dispose](): void {
    this.#sweeper.cancel();
  }

  /** The entry of `key` if it has not expired (an expired one is dropped on the way). */
  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.#clock.now()) return entry;
    this.#drop(key, entry);
    return undefined;
  }

  #drop(key: string, entry: Entry): void {
    this.#entries.delete(key);
    for (const id of entry.subscriptions.keys()) this.#leaveTopic(id, key);
  }

  #leaveTopic(id: string, key: string): void {
    const topic = this.#topics.get(id);
    if (topic === undefined || !topic.keys.delete(key)) return;
    if (topic.keys.size === 0) this.#topics.delete(id);
  }
}
