/**
 * FairScheduler against an in-memory port: no workers, no rings. The fake port
 * records every send and gives each worker a real ClaimTable; a "worker" runs a
 * record by claiming its ticket and reporting it done.
 */
import assert from "node:assert/strict";
import { ClaimTable } from "../../core/pool/claim_table.ts";
import {
  FairScheduler,
  type FairSchedulerOptions,
  type ScheduledRecord,
} from "../../core/pool/fair_scheduler.ts";
import { ticketOf, ToWorker, UNCLAIMED_SLOT, unpackTicket } from "../../core/pool/wire.ts";

/** A claim table that counts successful claims: the worker's start count. */
class CountingClaims extends ClaimTable {
  claimed = 0;

  static make(): CountingClaims {
    return new CountingClaims(ClaimTable.create().buffer);
  }

  override claim(slot: number, generation: number): boolean {
    const claimed = super.claim(slot, generation);
    if (claimed) this.claimed++;
    return claimed;
  }
}

interface Sent {
  worker: number;
  tag: number;
  slot: number;
  generation: number;
  a: number;
  b: number;
  label: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const label = (text: string): Uint8Array => encoder.encode(text);

class Harness {
  t = 1_000;
  readonly sends: Sent[] = [];
  readonly tables: CountingClaims[] = [];
  readonly finished: { record: ScheduledRecord; worker: number; delayMs: number; cpuMs: number }[] =
    [];
  readonly reopened: number[] = [];
  readonly lost: { record: ScheduledRecord; worker: number }[] = [];
  /** Ticketed sends not yet run (or skipped as revoked), per worker, in dispatch order. */
  readonly outstanding: Sent[][] = [];
  readonly scheduler: FairScheduler;

  constructor(size: number, options: FairSchedulerOptions = {}) {
    for (let w = 0; w < size; w++) {
      this.tables.push(CountingClaims.make());
      this.outstanding.push([]);
    }
    this.scheduler = new FairScheduler(
      {
        size,
        send: (worker, word, a, b, body) => {
          const { tag, slot, generation } = unpackTicket(word);
          const sent = {
            worker,
            tag,
            slot,
            generation,
            a,
            b,
            label: body === undefined ? "" : decoder.decode(body),
          };
          this.sends.push(sent);
          if (slot !== UNCLAIMED_SLOT) this.outstanding[worker]!.push(sent);
        },
        claims: (worker) => this.tables[worker]!,
        starts: (worker) => this.tables[worker]!.claimed,
      },
      {
        now: () => this.t,
        finished: (record, worker, delayMs, cpuMs) => {
          this.finished.push({ record, worker, delayMs, cpuMs });
        },
        reopen: (id) => {
          this.reopened.push(id);
          return label(`open${id}`);
        },
        lost: (record, worker) => {
          this.lost.push({ record, worker });
        },
      },
      options,
    );
  }

  ready(...workers: number[]): void {
    for (const worker of workers) this.scheduler.workerReady(worker);
  }

  /** The worker claims the record (false: it was revoked and is skipped). */
  start(sent: Sent): boolean {
    const i = this.outstanding[sent.worker]!.indexOf(sent);
    if (i >= 0) this.outstanding[sent.worker]!.splice(i, 1);
    return this.tables[sent.worker]!.claim(sent.slot, sent.generation);
  }

  finish(sent: Sent, cpuMicros = 20, startedAt = this.t): void {
    this.scheduler.done(sent.worker, ticketOf(sent.slot, sent.generation), cpuMicros, startedAt);
  }

  /** The worker runs its oldest dispatched record; returns it (undefined: nothing to run). */
  runNext(worker: number, cpuMicros = 20): Sent | undefined {
    for (;;) {
      const sent = this.outstanding[worker]![0];
      if (sent === undefined) return undefined;
      if (!this.start(sent)) continue;
      this.finish(sent, cpuMicros);
      return sent;
    }
  }

  /** Runs every worker's records, oldest first across workers, until none is left. */
  drain(cpuMicros = 20): void {
    for (;;) {
      let oldest: Sent | undefined;
      for (const queue of this.outstanding) {
        const head = queue[0];
        if (head !== undefined && (oldest === undefined || this.order(head) < this.order(oldest))) {
          oldest = head;
        }
      }
      if (oldest === undefined) return;
      if (this.start(oldest)) this.finish(oldest, cpuMicros);
    }
  }

  order(sent: Sent): number {
    return this.sends.indexOf(sent);
  }

  sentTo(worker: number): Sent[] {
    return this.sends.filter((s) => s.worker === worker);
  }
}

Deno.test("FairScheduler serves a flooding key no more than its share", () => {
  const h = new Harness(1, { window: 4, flowInFlight: 2 });
  h.ready(0);
  for (let id = 1; id <= 11; id++) h.scheduler.bindSocket(id, undefined, 0);
  for (let i = 0; i < 1000; i++) h.scheduler.enqueueSocket(1, ToWorker.Frame, i);
  for (let id = 2; id <= 11; id++) {
    for (let i = 0; i < 10; i++) h.scheduler.enqueueSocket(id, ToWorker.Frame, i);
  }
  h.drain();

  assert.equal(h.sends.length, 1100);
  const lastSmall = h.sends.findLastIndex((s) => s.a !== 1);
  const floodBefore = h.sends.slice(0, lastSmall).filter((s) => s.a === 1).length;
  // Eleven flows share the worker: the flood gets about 1/11 of the dispatches while
  // the others wait, not the 1000 a FIFO would give it.
  assert.ok(lastSmall < 2 * 10 * 10, `small flows done by dispatch ${lastSmall}`);
  assert.ok(floodBefore <= 20, `flood had ${floodBefore} dispatches before the small flows ended`);
  // And it still gets everything, in order.
  assert.deepEqual(
    h.sends.filter((s) => s.a === 1).map((s) => s.b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

Deno.test("FairScheduler shares by measured cost (deficit round robin)", () => {
  const h = new Harness(1, { window: 64, flowInFlight: 64 });
  h.ready(0);
  const CHEAP = 1, COSTLY = 2;
  for (let i = 0; i < 3000; i++) {
    h.scheduler.enqueueOrdered(CHEAP, ToWorker.Signal, label(`c${i}`));
    h.scheduler.enqueueOrdered(COSTLY, ToWorker.Signal, label(`x${i}`));
  }
  let runs = 0;
  while (runs < 2200) {
    const head = h.outstanding[0]![0];
    assert.ok(head !== undefined, "work left to run");
    h.runNext(0, head.a === CHEAP ? 100 : 1000);
    runs++;
  }
  // Skip the warm-up while the cost estimates converge.
  const measured = h.sends.slice(200, 2200);
  const cheap = measured.filter((s) => s.a === CHEAP).length;
  const costly = measured.filter((s) => s.a === COSTLY).length;
  const ratio = cheap / costly;
  assert.ok(ratio > 5 && ratio < 20, `cheap/costly = ${cheap}/${costly} = ${ratio}`);
});

Deno.test("FairScheduler runs an ordered key in order, on one worker at a time", () => {
  const h = new Harness(2, { window: 4, flowInFlight: 2 });
  h.ready(0, 1);
  const KEYS = 8, PER_KEY = 40;
  // Records arrive while others run, so keys drain now and then and may change worker.
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const enqueued = new Map<number, number>();
  const next = new Map<number, number>();
  const workersOfKey = new Map<number, Set<number>>();
  let checked = 0;
  for (let step = 0; checked < KEYS * PER_KEY || h.scheduler.inFlightTotal > 0; step++) {
    assert.ok(step < 100_000, "no progress");
    if (random() < 0.5) {
      const key = 1 + Math.floor(random() * KEYS);
      const i = enqueued.get(key) ?? 0;
      if (i < PER_KEY) {
        h.scheduler.enqueueOrdered(key, ToWorker.Signal, label(`${key}:${i}`));
        enqueued.set(key, i + 1);
      }
    } else {
      const worker = random() < 0.5 ? 0 : 1;
      if (h.runNext(worker) === undefined) h.runNext(1 - worker);
    }
    for (; checked < h.sends.length; checked++) {
      const sent = h.sends[checked]!;
      const [key, index] = sent.label.split(":").map(Number) as [number, number];
      assert.equal(index, next.get(key) ?? 0, `key ${key} dispatched in order`);
      next.set(key, index + 1);
      const elsewhere = h.outstanding[1 - sent.worker]!.some((s) => s.a === key);
      assert.ok(!elsewhere, `key ${key} in flight on both workers`);
      let seen = workersOfKey.get(key);
      if (seen === undefined) workersOfKey.set(key, seen = new Set());
      seen.add(sent.worker);
    }
  }
  for (let key = 1; key <= KEYS; key++) assert.equal(next.get(key), PER_KEY);
  // The check means something only if keys did change workers.
  assert.ok([...workersOfKey.values()].some((set) => set.size === 2), "some key moved");
  assert.equal(h.scheduler.queued, 0);
});

Deno.test("FairScheduler sends a socket's records only to its home worker", () => {
  const h = new Harness(2, { window: 8, flowInFlight: 2 });
  h.ready(0, 1);
  assert.equal(h.scheduler.bindSocket(5, undefined, 1), 1);
  assert.equal(h.scheduler.homeOf(5), 1);
  for (let i = 0; i < 20; i++) h.scheduler.enqueueSocket(5, ToWorker.Frame, i, label(`f${i}`));
  h.drain();
  assert.equal(h.sends.length, 20);
  assert.ok(h.sends.every((s) => s.worker === 1 && s.a === 5));
  assert.deepEqual(h.sends.map((s) => s.b), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(h.sends.map((s) => s.label), Array.from({ length: 20 }, (_, i) => `f${i}`));
});

Deno.test("FairScheduler keeps at most `window` records in flight per worker", () => {
  const WINDOW = 4;
  const h = new Harness(2, { window: WINDOW });
  h.ready(0, 1);
  for (let i = 0; i < 50; i++) {
    h.scheduler.enqueueFree(`s${i % 3}`, ToWorker.Signal, i, 0, label(""));
  }
  for (let i = 0; i < 20; i++) h.scheduler.enqueueOrdered(i % 4, ToWorker.Signal, label(""));
  let peak = 0;
  for (let step = 0; h.sends.length < 70 || h.scheduler.inFlightTotal > 0; step++) {
    for (const worker of [0, 1]) {
      const inFlight = h.outstanding[worker]!.length;
      assert.equal(h.scheduler.inFlight(worker), inFlight);
      assert.ok(inFlight <= WINDOW, `worker ${worker} has ${inFlight} in flight`);
      peak = Math.max(peak, inFlight);
    }
    assert.ok(step < 1000, "no progress");
    h.runNext(step % 2);
  }
  assert.equal(peak, WINDOW);
  assert.equal(h.sends.length, 70);
});

Deno.test("FairScheduler.workerStuck revokes unstarted records and moves sockets with input", () => {
  const h = new Harness(2, { window: 8, flowInFlight: 8 });
  h.ready(0);
  // Worker 1 still starting: everything goes to worker 0.
  for (let i = 0; i < 4; i++) h.scheduler.enqueueFree("s", ToWorker.Signal, i, 0, label(`r${i}`));
  h.scheduler.bindSocket(9, undefined, 0);
  for (let i = 0; i < 6; i++) h.scheduler.enqueueSocket(9, ToWorker.Frame, i, label(`f${i}`));
  assert.deepEqual(h.sends.map((s) => s.label), ["r0", "r1", "r2", "r3", "f0", "f1", "f2", "f3"]);
  assert.equal(h.scheduler.queued, 2);
  const [r0, r1, r2, r3, f0] = h.sends;
  assert.ok(h.start(r0!), "r0 starts");
  h.ready(1);
  assert.equal(h.sentTo(1).length, 0, "worker 1 has nothing to take yet");

  const before = h.sends.length;
  h.scheduler.workerStuck(0);

  assert.equal(h.scheduler.available(0), false);
  for (const sent of [r1!, r2!, r3!, f0!]) {
    assert.equal(h.tables[0]!.claim(sent.slot, sent.generation), false, `${sent.label} revoked`);
  }
  assert.equal(h.scheduler.inFlight(0), 1, "the started record stays");
  assert.deepEqual(h.reopened, [9]);
  assert.equal(h.scheduler.homeOf(9), 1);
  const forget = h.sends[before]!;
  assert.deepEqual(
    { worker: forget.worker, tag: forget.tag, slot: forget.slot, a: forget.a },
    { worker: 0, tag: ToWorker.Forget, slot: UNCLAIMED_SLOT, a: 9 },
  );
  // Worker 0 only skips the revoked ones; it finishes r0 normally.
  h.finish(r0!, 500);
  assert.equal(h.finished.at(-1)!.worker, 0);
  assert.equal(decoder.decode(h.finished.at(-1)!.record.body), "r0");
  assert.equal(h.scheduler.inFlight(0), 0);
  h.drain();
  const after = h.sends.slice(before + 1);
  assert.ok(after.every((s) => s.worker === 1), "the rest goes to worker 1");
  assert.deepEqual(
    after.filter((s) => s.a === 9).map((s) => s.label),
    ["open9", "f0", "f1", "f2", "f3", "f4", "f5"],
  );
  assert.equal(after.find((s) => s.label === "open9")!.tag, ToWorker.Open);
  assert.deepEqual(
    after.filter((s) => s.tag === ToWorker.Signal).map((s) => s.label),
    ["r1", "r2", "r3"],
  );
  assert.equal(h.finished.length, 1 + 3 + 7);
});

Deno.test("FairScheduler.workerStuck leaves a socket without input on its home", () => {
  const h = new Harness(2, { window: 8 });
  h.ready(0, 1);
  h.scheduler.bindSocket(3, undefined, 0);
  h.scheduler.workerStuck(0);
  assert.deepEqual(h.reopened, []);
  assert.equal(h.scheduler.homeOf(3), 0);
  // Input arriving while the home is stuck moves it then.
  h.scheduler.enqueueSocket(3, ToWorker.Frame, 0, label("late"));
  assert.deepEqual(h.reopened, [3]);
  assert.equal(h.scheduler.homeOf(3), 1);
  assert.deepEqual(h.sends.map((s) => [s.worker, s.tag, s.label]), [
    [0, ToWorker.Forget, ""],
    [1, ToWorker.Open, "open3"],
    [1, ToWorker.Frame, "late"],
  ]);
});

Deno.test("FairScheduler.bindSocket homes a new socket even when every worker is stuck", () => {
  const h = new Harness(2, { window: 8 });
  h.ready(0, 1);
  h.scheduler.workerStuck(0);
  h.scheduler.workerStuck(1);
  // A loaded machine: both past the slice. Accepting must not fail; the socket waits.
  const home = h.scheduler.bindSocket(5);
  assert.ok(home === 0 || home === 1);
  assert.throws(() => h.scheduler.bindSocket(6, () => false), RangeError, "none eligible at all");
  h.scheduler.workerRecovered(home);
  h.scheduler.enqueueSocket(5, ToWorker.Frame, 0, label("hi"));
  assert.ok(h.sends.some((s) => s.worker === home && s.tag === ToWorker.Frame && s.label === "hi"));
});

Deno.test("FairScheduler.workerLost reports started records and re-dispatches the rest", () => {
  const h = new Harness(2, { window: 8 });
  h.ready(0);
  for (let i = 0; i < 4; i++) h.scheduler.enqueueFree("s", ToWorker.Signal, i, 0, label(`r${i}`));
  h.scheduler.bindSocket(7, undefined, 0);
  const [r0, r1] = h.sends;
  assert.ok(h.start(r0!) && h.start(r1!));
  h.ready(1);
  assert.equal(h.sentTo(1).length, 0);

  const before = h.sends.length;
  h.scheduler.workerLost(0);
  h.tables[0] = CountingClaims.make(); // the replacement's table

  assert.deepEqual(
    h.lost.map((l) => [l.worker, decoder.decode(l.record.body)]),
    [[0, "r0"], [0, "r1"]],
  );
  const after = h.sends.slice(before);
  assert.ok(after.every((s) => s.worker === 1));
  assert.deepEqual(after.filter((s) => s.tag === ToWorker.Signal).map((s) => s.label), [
    "r2",
    "r3",
  ]);
  // Its socket moves without a Forget (the worker is gone).
  assert.deepEqual(h.reopened, [7]);
  assert.equal(h.scheduler.homeOf(7), 1);
  assert.deepEqual(after.filter((s) => s.a === 7).map((s) => s.tag), [ToWorker.Open]);
  assert.ok(!h.sends.some((s) => s.tag === ToWorker.Forget));
  // A late Done of the lost incarnation is ignored.
  h.finish(r0!);
  assert.equal(h.finished.length, 0);

  // Nothing goes to worker 0 until it is ready again.
  const sentBefore = h.sentTo(0).length;
  h.scheduler.enqueueFree("reply", ToWorker.Signal, 0, 0, label("pinned"), 0);
  h.scheduler.enqueueFree("other", ToWorker.Signal, 0, 0, label("free"));
  assert.equal(h.sentTo(0).length, sentBefore);
  assert.equal(h.sends.at(-1)!.label, "free");
  assert.equal(h.sends.at(-1)!.worker, 1);
  assert.equal(h.scheduler.queued, 1);
  h.ready(0);
  assert.deepEqual(h.sentTo(0).slice(sentBefore).map((s) => s.label), ["pinned"]);
  h.drain();
  assert.equal(h.scheduler.inFlightTotal, 0);
  assert.equal(h.finished.length, 2 + 1 + 2);
});

Deno.test("FairScheduler forgets a closed socket once its records ran", () => {
  const h = new Harness(2, { window: 8 });
  h.ready(0, 1);
  h.scheduler.bindSocket(4);
  assert.equal(h.scheduler.flowCount, 1);
  h.scheduler.enqueueSocket(4, ToWorker.Frame, 0, label("a"));
  h.drain();
  assert.equal(h.scheduler.flowCount, 1, "an open socket stays");
  h.scheduler.enqueueSocket(4, ToWorker.Frame, 0, label("b"));
  h.scheduler.enqueueSocket(4, ToWorker.Closed, 0, label("bye"));
  h.scheduler.socketClosed(4);
  assert.equal(h.scheduler.flowCount, 1, "kept while its records run");
  h.drain();
  assert.equal(h.scheduler.flowCount, 0);
  assert.equal(h.scheduler.homeOf(4), undefined);
  // Records for the forgotten socket are dropped.
  h.scheduler.enqueueSocket(4, ToWorker.Frame, 0, label("late"));
  assert.equal(h.scheduler.queued, 0);
  assert.equal(h.sends.length, 3);
  // A socket closed while idle goes at once.
  h.scheduler.bindSocket(6);
  h.scheduler.socketClosed(6);
  assert.equal(h.scheduler.flowCount, 0);
});

Deno.test("FairScheduler forgets drained ordered and free flows", () => {
  const h = new Harness(2, { window: 16 });
  h.ready(0, 1);
  for (let key = 1; key <= 10_000; key++) {
    h.scheduler.enqueueOrdered(key, ToWorker.Signal, label(`${key}`));
    if (key % 100 === 0) h.drain();
  }
  for (let i = 0; i < 500; i++) {
    h.scheduler.enqueueFree(`sender${i}`, ToWorker.Signal, 0, 0, label(""), i % 2);
    h.scheduler.enqueueFree(`sender${i}`, ToWorker.Signal, 0, 0, label(""));
  }
  assert.ok(h.scheduler.flowCount > 0);
  h.drain();
  assert.equal(h.finished.length, 11_000);
  assert.equal(h.scheduler.flowCount, 0);
  assert.equal(h.scheduler.queued, 0);
  assert.equal(h.scheduler.inFlightTotal, 0);
});

Deno.test("FairScheduler reports queued, in flight and the oldest queued time", () => {
  const h = new Harness(1, { window: 2 });
  h.ready(0);
  assert.equal(h.scheduler.queued, 0);
  assert.equal(h.scheduler.inFlightTotal, 0);
  assert.equal(h.scheduler.oldestQueuedAt(), undefined);
  for (let i = 0; i < 4; i++) {
    h.t = 1_000 + 10 * i;
    h.scheduler.enqueueFree("s", ToWorker.Signal, i, 0, label(`r${i}`));
  }
  h.t = 1_050;
  h.scheduler.enqueueOrdered(3, ToWorker.Signal, label("k"));
  assert.equal(h.scheduler.queued, 3);
  assert.equal(h.scheduler.inFlightTotal, 2);
  assert.equal(h.scheduler.inFlight(0), 2);
  assert.equal(h.scheduler.oldestQueuedAt(), 1_020);

  const r0 = h.sends[0]!;
  assert.ok(h.start(r0));
  h.t = 1_100;
  h.finish(r0, 1_500, 1_005);
  assert.deepEqual(
    h.finished.map((f) => [decoder.decode(f.record.body), f.worker, f.delayMs, f.cpuMs]),
    [["r0", 0, 5, 1.5]],
  );
  assert.equal(h.scheduler.queued, 2);
  assert.equal(h.scheduler.inFlightTotal, 2);
  // "s" spent 1.5 ms, over its 1 ms quantum: the other key goes first.
  assert.equal(h.sends[2]!.label, "k");
  assert.equal(h.scheduler.oldestQueuedAt(), 1_020);
  h.drain();
  assert.equal(h.scheduler.queued, 0);
  assert.equal(h.scheduler.inFlightTotal, 0);
  assert.equal(h.scheduler.oldestQueuedAt(), undefined);
});

Deno.test("FairScheduler lets an ordered key whose records all finished run on an idle worker at once", () => {
  const harness = new Harness(2, { window: 8, flowInFlight: 2 });
  const scheduler = harness.scheduler;
  const sentAs = (text: string) => harness.sends.find((sent) => sent.label === text);
  const run = (sent: Sent) => {
    harness.tables[sent.worker]!.claim(sent.slot, sent.generation);
    scheduler.done(sent.worker, ticketOf(sent.slot, sent.generation), 10, harness.t);
  };
  scheduler.workerReady(0);
  for (let i = 0; i < 6; i++) scheduler.enqueueFree("p", 7, 0, 0, label(`p${i}`), 0);
  for (const text of ["a", "b", "c"]) scheduler.enqueueOrdered(1, 7, label(text));
  scheduler.workerReady(1);
  run(sentAs("a")!);
  run(sentAs("b")!); // key 1 has nothing in flight now: bound to no worker
  const p0 = sentAs("p0")!;
  harness.tables[0]!.claim(p0.slot, p0.generation); // worker 0 runs p0 for long
  scheduler.workerStuck(0);
  assert.equal(sentAs("c")?.worker, 1, "key 1's next record waits for the stuck worker");
});

Deno.test("FairScheduler keeps a moved socket's Open ahead of its frames when both are taken back again", () => {
  const harness = new Harness(2, { window: 8, flowInFlight: 4 });
  const scheduler = harness.scheduler;
  scheduler.workerReady(0);
  scheduler.workerReady(1);
  scheduler.bindSocket(7, undefined, 0);
  // Worker 0 runs a long record of another key; socket 7's frame arrives meanwhile.
  scheduler.enqueueOrdered(99, 7, label("long"));
  const long = harness.sends.find((sent) => sent.label === "long")!;
  harness.tables[long.worker]!.claim(long.slot, long.generation);
  scheduler.workerStuck(long.worker);
  scheduler.enqueueSocket(7, ToWorker.Frame, 0, label("frame"));
  // The socket moved to the other worker: Open, then its frame, both unstarted there.
  const other = long.worker === 0 ? 1 : 0;
  const toOther = () => harness.sends.filter((sent) => sent.worker === other && sent.a === 7);
  assert.deepEqual(toOther().map((sent) => sent.tag), [ToWorker.Open, ToWorker.Frame]);
  // Now that worker is stuck too, before starting either; the first one recovered.
  scheduler.workerRecovered(long.worker);
  scheduler.workerStuck(other);
  const last = harness.sends.filter((sent) => sent.a === 7 && sent.worker === long.worker);
  const tags = last.map((sent) => sent.tag).filter((tag) => tag !== ToWorker.Forget);
  assert.deepEqual(tags.slice(-2), [ToWorker.Open, ToWorker.Frame], `got ${tags}`);
  assert.ok(
    tags.indexOf(ToWorker.Frame) > tags.indexOf(ToWorker.Open),
    "a frame overtook its Open",
  );
});

Deno.test("FairScheduler.waitingMs counts unkeyed records waiting behind a started one of the same sender", () => {
  const harness = new Harness(1, { window: 8 });
  const scheduler = harness.scheduler;
  scheduler.workerReady(0);
  scheduler.enqueueFree("sender", ToWorker.Signal, 0, 0, label("async, started"));
  scheduler.enqueueFree("sender", ToWorker.Signal, 0, 0, label("waiting"));
  const [first] = harness.sends;
  harness.tables[0]!.claim(first!.slot, first!.generation);
  harness.t += 300;
  assert.equal(scheduler.waitingMs(0), 300, "an unkeyed record is not blocked by its sender's");
  // A socket's frame behind its own started frame is not a stall.
  scheduler.bindSocket(3, undefined, 0);
  scheduler.enqueueSocket(3, ToWorker.Frame, 0, label("f1"));
  scheduler.enqueueSocket(3, ToWorker.Frame, 0, label("f2"));
  const f1 = harness.sends.find((sent) => sent.label === "f1")!;
  harness.tables[0]!.claim(f1.slot, f1.generation);
  const second = harness.sends.find((sent) => sent.label === "waiting")!;
  harness.tables[0]!.claim(second.slot, second.generation);
  harness.t += 100;
  assert.equal(scheduler.waitingMs(0), 0);
});
