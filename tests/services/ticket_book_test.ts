/**
 * TicketBook: limits, FIFO waiting lists, holds, deadlines, closing and
 * removal, driven by a ManualClock; a property test checks the invariants
 * under random operations.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type TicketAsk,
  TicketBook,
  type TicketEndReason,
  type TicketHolder,
} from "../../core/services/ticket_book.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

interface Log {
  granted: TicketHolder[];
  queued: string[];
  cancelled: { request: string; reason: TicketEndReason }[];
  removed: { ticket: string; reason: TicketEndReason }[];
}

function makeBook(options: { defaultLimit?: number; limits?: Record<string, number> } = {}) {
  const clock = new ManualClock();
  const log: Log = { granted: [], queued: [], cancelled: [], removed: [] };
  const book = new TicketBook({
    clock,
    defaultLimit: options.defaultLimit ?? 1,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    holdMs: 1000,
    events: {
      queued: (waiter) => log.queued.push(waiter.request),
      granted: (holder) => log.granted.push(holder),
      cancelled: (waiter, reason) => log.cancelled.push({ request: waiter.request, reason }),
      removed: (holder, reason) => log.removed.push({ ticket: holder.ticket, reason }),
    },
  });
  return { clock, log, book };
}

const ask = (n: number, extra: Partial<TicketAsk> = {}): TicketAsk => ({
  requester: { stage: "s", worker: n % 2 },
  callback: "cb",
  values: [n],
  ...extra,
});

Deno.test("TicketBook grants up to the limit and serves waiters in arrival order", () => {
  const { log, book } = makeBook({ limits: { login: 2 } });
  const ids = [0, 1, 2, 3, 4].map((n) => book.request("login", ask(n)));
  assert.deepEqual(log.granted.map((h) => h.values[0]), [0, 1]);
  assert.deepEqual(log.queued, ids.slice(2));
  assert.ok(book.release(log.granted[1]!.ticket));
  assert.deepEqual(log.granted.map((h) => h.values[0]), [0, 1, 2]);
  assert.equal(book.release(log.granted[1]!.ticket), false, "a ticket releases once");
  book.release(log.granted[0]!.ticket);
  book.release(log.granted[2]!.ticket);
  assert.deepEqual(log.granted.map((h) => h.values[0]), [0, 1, 2, 3, 4]);
  assert.deepEqual(book.stats().find((s) => s.name === "login")?.holders, 2);
  book[Symbol.dispose]();
});

Deno.test("TicketBook: a negative limit has no waiting list; a newcomer never jumps the queue", () => {
  const { log, book } = makeBook({ limits: { room: -2, line: 1 } });
  for (const n of [0, 1, 2]) book.request("room", ask(n));
  assert.equal(log.granted.length, 2);
  assert.deepEqual(log.cancelled.map((c) => c.reason), ["full"]);
  // With a waiting list, a released slot goes to the first waiter, not to a new request.
  book.request("line", ask(10));
  book.request("line", ask(11));
  book.release(log.granted[2]!.ticket);
  book.request("line", ask(12));
  assert.deepEqual(log.granted.slice(2).map((h) => h.values[0]), [10, 11]);
  book[Symbol.dispose]();
});

Deno.test("TicketBook expires a holder after the hold time unless extended", () => {
  const { clock, log, book } = makeBook();
  book.request("a", ask(0));
  book.request("a", ask(1));
  const first = log.granted[0]!;
  clock.advance(900);
  assert.ok(book.extend(first.ticket, 500));
  clock.advance(400);
  assert.equal(log.granted.length, 1, "extended: still held at 1300 ms");
  clock.advance(100);
  assert.deepEqual(log.removed, [{ ticket: first.ticket, reason: "expired" }]);
  assert.equal(log.granted.length, 2, "the waiter got the expired slot");
  assert.equal(book.extend(first.ticket, 100), false);
  book[Symbol.dispose]();
  assert.equal(clock.pending, 0, "dispose cancels every timer");
});

Deno.test("TicketBook cancels a waiter that cannot start before its deadline", () => {
  const { clock, log, book } = makeBook();
  book.request("a", ask(0));
  const late = book.request("a", ask(1, { deadlineMs: 300 }));
  book.request("a", ask(2));
  clock.advance(300);
  assert.deepEqual(log.cancelled, [{ request: late, reason: "deadline" }]);
  book.release(log.granted[0]!.ticket);
  assert.deepEqual(log.granted.map((h) => h.values[0]), [0, 2]);
  book[Symbol.dispose]();
});

Deno.test("TicketBook: define with closeAfterMs stops granting; remove ends everyone; stats", () => {
  const { clock, log, book } = makeBook();
  book.define("sale", 1, 1000);
  book.request("sale", ask(0));
  book.request("sale", ask(1));
  clock.advance(250);
  assert.deepEqual(book.stats(), [{
    name: "sale",
    limit: 1,
    holders: 1,
    waiting: 1,
    oldestWaitMs: 250,
    closed: false,
  }]);
  book.extend(log.granted[0]!.ticket, 10_000);
  clock.advance(750);
  assert.deepEqual(log.cancelled.map((c) => c.reason), ["closed"]);
  book.request("sale", ask(2));
  assert.deepEqual(log.cancelled.map((c) => c.reason), ["closed", "closed"]);
  book.define("sale", 3); // reopens
  book.request("sale", ask(3));
  assert.equal(log.granted.length, 2);
  assert.ok(book.remove("sale"));
  assert.deepEqual(log.removed.map((r) => r.reason), ["removed", "removed"]);
  assert.deepEqual(book.stats(), []);
  assert.throws(() => book.define("x", 1.5), TypeError);
  book[Symbol.dispose]();
});

Deno.test("TicketBook forgets an undefined category once it is empty", () => {
  const { log, book } = makeBook();
  book.request("tmp", ask(0));
  assert.equal(book.stats().length, 1);
  book.release(log.granted[0]!.ticket);
  assert.deepEqual(book.stats(), []);
  book[Symbol.dispose]();
});

Deno.test("TicketBook: under a steady arrival rate below capacity, every wait stays bounded", () => {
  // 4 slots, each held 30 ms: capacity 133/s; requests arrive at 100/s for 20 s.
  const clock = new ManualClock();
  const waits: number[] = [];
  const book: TicketBook = new TicketBook({
    clock,
    defaultLimit: 4,
    events: {
      queued() {},
      cancelled() {},
      removed() {},
      granted(holder) {
        waits.push(clock.now() - holder.queuedAt);
        clock.setTimeout(() => book.release(holder.ticket), 30);
      },
    },
  });
  for (let n = 0; n < 2000; n++) {
    book.request("steady", ask(n));
    clock.advance(10);
  }
  clock.advance(1000);
  assert.equal(waits.length, 2000, "everyone was served");
  assert.ok(Math.max(...waits) <= 30, `longest wait ${Math.max(...waits)} ms`);
  book[Symbol.dispose]();
});

type Op =
  | { op: "request"; category: number; deadline: number | null }
  | { op: "release"; pick: number }
  | { op: "extend"; pick: number; ms: number }
  | { op: "advance"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("request" as const),
    category: fc.integer({ min: 0, max: 2 }),
    deadline: fc.option(fc.integer({ min: 1, max: 3000 })),
  }),
  fc.record({ op: fc.constant("release" as const), pick: fc.nat() }),
  fc.record({
    op: fc.constant("extend" as const),
    pick: fc.nat(),
    ms: fc.integer({ min: 1, max: 3000 }),
  }),
  fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 1500 }) }),
);

Deno.test("TicketBook property: holders never exceed the limit, FIFO, and every request ends", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
      const limits = [2, -1, 1];
      const clock = new ManualClock();
      // Events check the invariants as they happen.
      const holders = new Map<string, Set<string>>();
      const grantOrder = new Map<string, string[]>();
      const queueOrder = new Map<string, string[]>();
      const live = new Set<string>();
      const outcome = new Map<string, string>();
      const checked = new TicketBook({
        clock,
        defaultLimit: 1,
        limits: { c0: limits[0]!, c1: limits[1]!, c2: limits[2]! },
        holdMs: 1000,
        events: {
          queued(waiter) {
            const list = queueOrder.get(waiter.category) ?? [];
            list.push(waiter.request);
            queueOrder.set(waiter.category, list);
          },
          granted(holder) {
            const set = holders.get(holder.category) ?? new Set();
            set.add(holder.ticket);
            holders.set(holder.category, set);
            const limit = Math.abs(limits[Number(holder.category.slice(1))]!);
            assert.ok(set.size <= limit, `${holder.category}: ${set.size} holders > ${limit}`);
            live.add(holder.ticket);
            outcome.set(holder.request, "granted");
            const order = grantOrder.get(holder.category) ?? [];
            order.push(holder.request);
            grantOrder.set(holder.category, order);
          },
          cancelled(waiter) {
            assert.ok(!outcome.has(waiter.request), "a request ends once");
            outcome.set(waiter.request, "cancelled");
          },
          removed(holder) {
            holders.get(holder.category)?.delete(holder.ticket);
            live.delete(holder.ticket);
          },
        },
      });
      const requested: string[] = [];
      for (const op of ops) {
        if (op.op === "request") {
          requested.push(checked.request(`c${op.category}`, {
            requester: { stage: "s", worker: 0 },
            callback: "cb",
            values: [],
            ...(op.deadline === null ? {} : { deadlineMs: op.deadline }),
          }));
        } else if (op.op === "release" || op.op === "extend") {
          const tickets = [...live];
          if (tickets.length === 0) continue;
          const ticket = tickets[op.pick % tickets.length]!;
          if (op.op === "release") {
            // The model lets go first: the release grants the freed slot synchronously.
            live.delete(ticket);
            for (const set of holders.values()) set.delete(ticket);
            assert.ok(checked.release(ticket));
          } else assert.ok(checked.extend(ticket, op.ms));
        } else clock.advance(op.ms);
      }
      // Queued requests are granted in the order they queued (within a category).
      for (const [category, queued] of queueOrder) {
        const granted = (grantOrder.get(category) ?? []).filter((id) => queued.includes(id));
        const expected = queued.filter((id) => granted.includes(id));
        assert.deepEqual(granted, expected, `${category} serves its waiting list in FIFO order`);
      }
      // With nobody extending, time ends every hold, so every waiter is eventually served.
      clock.advance(10 * 60_000);
      for (const id of requested) assert.ok(outcome.has(id), `request ${id} never ended`);
      checked[Symbol.dispose]();
      assert.equal(clock.pending, 0);
    }),
    { numRuns: 200 },
  );
});
