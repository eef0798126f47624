/**
 * The books of a ticket stage: categories, their holders and their FIFO
 * waiting lists. Pure logic over a {@link Clock}: it decides who holds a slot
 * and tells its {@link TicketEvents} what to send; the ticket service turns
 * those events into messages.
 *
 * Invariant: a category never has more holders than its limit.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../time/mod.ts";

/** Why a request was cancelled or a holder removed. */
export type TicketEndReason =
  /** No free slot and the category has no waiting list (negative limit). */
  | "full"
  /** The request could not start before its deadline. */
  | "deadline"
  /** The category stopped granting (its `closeAfterMs` passed). */
  | "closed"
  /** The category was removed (`"ticket:@category", null`). */
  | "removed"
  /** The holder kept its slot past the hold time without extending it. */
  | "expired";

/** Who asked for a ticket: grants and notifications go to this worker. */
export interface TicketRequester {
  stage: string;
  worker: number;
  /** Its process, when it is not the ticket stage's (a bus endpoint). */
  at?: string;
}

/** A request as the service hands it to the book. */
export interface TicketAsk {
  requester: TicketRequester;
  /** The requester's waitfor that runs when the slot is granted. */
  callback: string;
  /** The requester's waitfor that gets `(requestId, true | false | ticketId)`. */
  feedback?: string;
  /** The values the callback gets. */
  values: unknown[];
  /** Cancel the request if it cannot start within this many ms. */
  deadlineMs?: number;
}

/** A request waiting for a slot. */
export interface TicketWaiter extends TicketAsk {
  request: string;
  category: string;
  /** Clock time it was queued. */
  queuedAt: number;
}

/** A granted slot. */
export interface TicketHolder extends TicketWaiter {
  ticket: string;
  grantedAt: number;
}

/** What the book tells the service to do. */
export interface TicketEvents {
  /** The request waits in line (feedback `true`). */
  queued(waiter: TicketWaiter): void;
  /** The request holds a slot now (feedback `ticketId`, then the callback). */
  granted(holder: TicketHolder): void;
  /** The request will never be served (feedback `false`, then `ticket:@`). */
  cancelled(waiter: TicketWaiter, reason: TicketEndReason): void;
  /** A holder lost its slot without releasing it (`ticket:@`). */
  removed(holder: TicketHolder, reason: TicketEndReason): void;
}

/** A category's numbers, for metrics and inspection. */
export interface CategoryStats {
  name: string;
  /** The configured limit (negative: no waiting list). */
  limit: number;
  holders: number;
  waiting: number;
  /** Milliseconds the oldest waiter has waited (0 with nobody waiting). */
  oldestWaitMs: number;
  closed: boolean;
}

/** Options of a {@link TicketBook}. */
export interface TicketBookOptions {
  clock: Clock;
  events: TicketEvents;
  /** Limit of categories nobody defined (negative: no waiting list). */
  defaultLimit: number;
  /** Limits of the configured categories. */
  limits?: Record<string, number>;
  /** How long a holder keeps its slot unless it extends it (default 1000 ms). */
  holdMs?: number;
}

/** A holder or waiter of a category, as a broadcast reaches it. */
export type TicketMember =
  | { kind: "holder"; entry: TicketHolder }
  | { kind: "waiter"; entry: TicketWaiter };

class Category {
  readonly name: string;
  limit: number;
  /** Defined by config or at run time (kept while empty); others are dropped when empty. */
  defined: boolean;
  closed = false;
  closeTimer: TimerHandle | undefined;
  readonly holders = new Map<string, { holder: TicketHolder; timer: TimerHandle }>();
  /** Insertion order is arrival order: the first entry is served first. */
  readonly waiting = new Map<string, { waiter: TicketWaiter; timer?: TimerHandle }>();

  constructor(name: string, limit: number, defined: boolean) {
    this.name = name;
    this.limit = limit;
    this.defined = defined;
  }

  get capacity(): number {
    return Math.abs(this.limit);
  }

  get queues(): boolean {
    return this.limit >= 0;
  }
}

function checkLimit(what: string, limit: unknown): number {
  if (typeof limit !== "number" || !Number.isInteger(limit)) {
    throw new TypeError(`${what}: expected an integer limit; got ${String(limit)}`);
  }
  return limit;
}

/** Categories, holders and waiting lists of one ticket stage. */
export class TicketBook implements Disposable {
  #clock: Clock;
  #events: TicketEvents;
  #defaultLimit: number;
  #holdMs: number;
  #categories = new Map<string, Category>();
  /** ticket id → its category. */
  #tickets = new Map<string, Category>();
  #next = 0;

  constructor(options: TicketBookOptions) {
    this.#clock = options.clock;
    this.#events = options.events;
    this.#defaultLimit = checkLimit("ticket default limit", options.defaultLimit);
    this.#holdMs = options.holdMs ?? 1000;
    for (const [name, limit] of Object.entries(options.limits ?? {})) {
      this.#categories.set(
        name,
        new Category(name, checkLimit(`ticket category "${name}"`, limit), true),
      );
    }
  }

  /**
   * Creates or redefines a category (a redefinition reopens a closed one). With
   * `closeAfterMs > 0` it stops granting after that long: its waiters are
   * cancelled (`closed`) and new requests too, while holders keep their slots.
   *
   * @throws TypeError for a limit that is not an integer or a bad `closeAfterMs`
   */
  define(name: string, limit: number, closeAfterMs?: number): void {
    checkLimit(`ticket category "${name}"`, limit);
    if (
      closeAfterMs !== undefined &&
      (typeof closeAfterMs !== "number" || !(closeAfterMs >= 0))
    ) {
      throw new TypeError(
        `ticket category "${name}": expected closeAfterMs >= 0; got ${String(closeAfterMs)}`,
      );
    }
    let category = this.#categories.get(name);
    if (category === undefined) {
      category = new Category(name, limit, true);
      this.#categories.set(name, category);
    }
    category.limit = limit;
    category.defined = true;
    category.closed = false;
    category.closeTimer?.cancel();
    category.closeTimer = undefined;
    if (closeAfterMs !== undefined && closeAfterMs > 0) {
      const closing = category;
      closing.closeTimer = this.#clock.setTimeout(() => this.#close(closing), closeAfterMs);
    }
    if (!category.queues) this.#cancelAll(category, "full");
    this.#serve(category);
  }

  /** Removes a category: its waiters are cancelled and its holders removed (`removed`). */
  remove(name: string): boolean {
    const category = this.#categories.get(name);
    if (category === undefined) return false;
    this.#categories.delete(name);
    category.closeTimer?.cancel();
    this.#cancelAll(category, "removed");
    for (const [ticket, { holder, timer }] of [...category.holders]) {
      timer.cancel();
      category.holders.delete(ticket);
      this.#tickets.delete(ticket);
      this.#events.removed(holder, "removed");
    }
    return true;
  }

  /**
   * Asks for a slot of `name`: granted at once when a slot is free and nobody
   * waits before it, queued otherwise (or cancelled: no waiting list, closed).
   * Returns the request id.
   */
  request(name: string, ask: TicketAsk): string {
    let category = this.#categories.get(name);
    if (category === undefined) {
      category = new Category(name, this.#defaultLimit, false);
      this.#categories.set(name, category);
    }
    const waiter: TicketWaiter = {
      ...ask,
      request: `r${(this.#next++).toString(36)}`,
      category: name,
      queuedAt: this.#clock.now(),
    };
    if (category.closed) {
      this.#events.cancelled(waiter, "closed");
    } else if (category.holders.size < category.capacity && category.waiting.size === 0) {
      this.#grant(category, waiter);
    } else if (!category.queues) {
      this.#events.cancelled(waiter, "full");
    } else {
      const entry: { waiter: TicketWaiter; timer?: TimerHandle } = { waiter };
      if (ask.deadlineMs !== undefined) {
        entry.timer = this.#clock.setTimeout(() => {
          if (category.waiting.delete(waiter.request)) {
            this.#events.cancelled(waiter, "deadline");
            this.#dropIfIdle(category);
          }
        }, ask.deadlineMs);
      }
      category.waiting.set(waiter.request, entry);
      this.#events.queued(waiter);
    }
    this.#dropIfIdle(category);
    return waiter.request;
  }

  /** Gives a slot back; returns whether `ticket` held one. */
  release(ticket: string): boolean {
    const category = this.#tickets.get(ticket);
    const held = category?.holders.get(ticket);
    if (category === undefined || held === undefined) return false;
    held.timer.cancel();
    category.holders.delete(ticket);
    this.#tickets.delete(ticket);
    this.#serve(category);
    this.#dropIfIdle(category);
    return true;
  }

  /** Keeps `ticket` for `ms` more from now; returns whether it holds a slot. */
  extend(ticket: string, ms: number): boolean {
    const category = this.#tickets.get(ticket);
    const held = category?.holders.get(ticket);
    if (category === undefined || held === undefined) return false;
    held.timer.cancel();
    held.timer = this.#expiry(category, held.holder, ms);
    return true;
  }

  /** Every holder and waiter of `name`, holders first. */
  members(name: string): TicketMember[] {
    const category = this.#categories.get(name);
    if (category === undefined) return [];
    return [
      ...[...category.holders.values()].map(({ holder }) =>
        ({ kind: "holder", entry: holder }) as const
      ),
      ...[...category.waiting.values()].map(({ waiter }) =>
        ({ kind: "waiter", entry: waiter }) as const
      ),
    ];
  }

  /** The numbers of every category that exists now. */
  stats(): CategoryStats[] {
    const now = this.#clock.now();
    return [...this.#categories.values()].map((category) => {
      const oldest = category.waiting.values().next().value?.waiter.queuedAt;
      return {
        name: category.name,
        limit: category.limit,
        holders: category.holders.size,
        waiting: category.waiting.size,
        oldestWaitMs: oldest === undefined ? 0 : now - oldest,
        closed: category.closed,
      };
    });
  }

  /** Cancels every timer (the book is unusable afterwards). */
  [Symbol.dispose](): void {
    for (const category of this.#categories.values()) {
      category.closeTimer?.cancel();
      for (const { timer } of category.holders.values()) timer.cancel();
      for (const { timer } of category.waiting.values()) timer?.cancel();
    }
    this.#categories.clear();
    this.#tickets.clear();
  }

  #grant(category: Category, waiter: TicketWaiter): void {
    const holder: TicketHolder = {
      ...waiter,
      ticket: `t${(this.#next++).toString(36)}`,
      grantedAt: this.#clock.now(),
    };
    category.holders.set(holder.ticket, {
      holder,
      timer: this.#expiry(category, holder, this.#holdMs),
    });
    this.#tickets.set(holder.ticket, category);
    this.#events.granted(holder);
  }

  #expiry(category: Category, holder: TicketHolder, ms: number): TimerHandle {
    return this.#clock.setTimeout(() => {
      if (!category.holders.delete(holder.ticket)) return;
      this.#tickets.delete(holder.ticket);
      this.#events.removed(holder, "expired");
      this.#serve(category);
      this.#dropIfIdle(category);
    }, ms);
  }

  /** Grants free slots to the longest waiters, in arrival order. */
  #serve(category: Category): void {
    while (!category.closed && category.holders.size < category.capacity) {
      const first = category.waiting.values().next().value;
      if (first === undefined) return;
      category.waiting.delete(first.waiter.request);
      first.timer?.cancel();
      this.#grant(category, first.waiter);
    }
  }

  #close(category: Category): void {
    category.closeTimer = undefined;
    category.closed = true;
    this.#cancelAll(category, "closed");
  }

  #cancelAll(category: Category, reason: TicketEndReason): void {
    for (const { waiter, timer } of [...category.waiting.values()]) {
      timer?.cancel();
      category.waiting.delete(waiter.request);
      this.#events.cancelled(waiter, reason);
    }
  }

  /** An undefined category with nobody in it is the same as no category: forget it. */
  #dropIfIdle(category: Category): void {
    if (category.defined || category.holders.size > 0 || category.waiting.size > 0) return;
    if (this.#categories.get(category.name) === category) this.#categories.delete(category.name);
  }
}
