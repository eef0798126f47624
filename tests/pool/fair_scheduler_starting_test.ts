/**
 * FairScheduler and workers that are still loading their script: they take
 * replies (records queued `whileStarting`) and nothing else until ready.
 * In-memory port: every send is recorded, each worker has a real ClaimTable.
 */
import assert from "node:assert/strict";
import { ClaimTable } from "../../core/pool/claim_table.ts";
import { FairScheduler } from "../../core/pool/fair_scheduler.ts";
import { ticketOf, ToWorker, UNCLAIMED_SLOT, unpackTicket } from "../../core/pool/wire.ts";

interface Sent {
  worker: number;
  tag: number;
  slot: number;
  generation: number;
  label: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const label = (text: string): Uint8Array => encoder.encode(text);

function harness(size: number) {
  const sends: Sent[] = [];
  const tables = Array.from({ length: size }, () => ClaimTable.create());
  const starts = new Array<number>(size).fill(0);
  const scheduler = new FairScheduler({
    size,
    send: (worker, word, _a, _b, body) => {
      const { tag, slot, generation } = unpackTicket(word);
      sends.push({ worker, tag, slot, generation, label: decoder.decode(body) });
    },
    claims: (worker) => tables[worker]!,
    starts: (worker) => starts[worker]!,
  }, {
    now: () => 1_000,
    finished() {},
    reopen: (id) => label(`open${id}`),
    lost() {},
  });
  /** The worker runs a sent record to completion. */
  const run = (sent: Sent) => {
    assert.ok(tables[sent.worker]!.claim(sent.slot, sent.generation), `claim ${sent.label}`);
    starts[sent.worker]!++;
    scheduler.done(sent.worker, ticketOf(sent.slot, sent.generation), 20, 1_000);
  };
  const labels = (worker: number) =>
    sends.filter((s) => s.worker === worker && s.slot !== UNCLAIMED_SLOT).map((s) => s.label);
  return { scheduler, sends, run, labels, tables, starts };
}

Deno.test("FairScheduler gives a starting worker its replies and holds back new work until ready", () => {
  const { scheduler, labels } = harness(1);
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("early reply"), 0, true);
  assert.deepEqual(labels(0), [], "nothing before the worker exists");

  scheduler.workerStarting(0);
  assert.equal(scheduler.starting(0), true);
  assert.equal(scheduler.available(0), false);
  assert.deepEqual(labels(0), ["early reply"]);

  scheduler.bindSocket(5); // a starting worker can be a socket's home
  scheduler.enqueueSocket(5, ToWorker.Frame, 0, label("frame"));
  scheduler.enqueueFree("other#1", ToWorker.Signal, 0, 0, label("new message"));
  scheduler.enqueueFree("join", ToWorker.JoinFailed, 0, 1, label("join failed"), 0);
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("reply"), 0, true);
  assert.deepEqual(labels(0), ["early reply", "reply"], "only replies while starting");
  assert.equal(scheduler.queued, 3);

  scheduler.workerReady(0);
  assert.equal(scheduler.starting(0), false);
  assert.deepEqual(new Set(labels(0).slice(2)), new Set(["frame", "new message", "join failed"]));
  assert.equal(scheduler.queued, 0);
});

Deno.test("FairScheduler sends a lost worker's replies to its replacement once that starts", () => {
  const { scheduler, labels, sends, run } = harness(1);
  scheduler.workerStarting(0);
  scheduler.workerReady(0);
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("r1"), 0, true);
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("r2"), 0, true);
  run(sends.find((s) => s.label === "r1")!);
  assert.deepEqual(labels(0), ["r1", "r2"]);

  scheduler.workerLost(0); // r2 was not started: it waits for the replacement
  assert.equal(scheduler.starting(0), false);
  const before = sends.length;
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("r3"), 0, true);
  assert.equal(sends.length, before, "nothing goes to the old incarnation's ring");

  scheduler.workerStarting(0);
  assert.deepEqual(sends.slice(before).map((s) => s.label), ["r2", "r3"]);
});

Deno.test("FairScheduler keeps a stuck starting worker out of dispatch, even once recovered", () => {
  const { scheduler, labels, run, sends } = harness(1);
  scheduler.workerStarting(0);
  scheduler.workerStuck(0);
  scheduler.enqueueFree("calc#0", ToWorker.Signal, 0, 0, label("reply"), 0, true);
  assert.deepEqual(labels(0), [], "a stuck worker takes no reply");

  scheduler.workerRecovered(0);
  assert.equal(scheduler.available(0), false, "recovered, it is still loading");
  assert.deepEqual(labels(0), ["reply"]);
  scheduler.enqueueFree("other#1", ToWorker.Signal, 0, 0, label("new message"));
  run(sends.find((s) => s.label === "reply")!);
  assert.deepEqual(labels(0), ["reply"]);

  scheduler.workerReady(0);
  assert.deepEqual(labels(0), ["reply", "new message"]);
});
