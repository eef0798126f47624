/**
 * Watchdog against a ManualClock and fake control snapshots: each worker's
 * snapshot is set by the test, every call to the target is recorded.
 */
import assert from "node:assert/strict";
import type { ControlSnapshot } from "../../core/pool/control_block.ts";
import { Watchdog, type WatchdogOptions } from "../../core/pool/watchdog.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

type Call =
  | ["yield", number]
  | ["stuck", number, number]
  | ["recovered", number]
  | ["terminate", number, number];

/** A worker's control block; its ring loop last turned when the record began. */
function snapshot(running: boolean, startedAt: number): ControlSnapshot {
  return {
    loopAt: startedAt,
    running,
    tag: 7,
    key: 0,
    ticket: 0,
    startedAt,
    handled: 0,
    yields: 0,
    busyMs: 0,
    yieldRequested: false,
  };
}

function setup(size: number, options: Omit<WatchdogOptions, "clock"> = {}) {
  const clock = new ManualClock();
  const controls: (ControlSnapshot | undefined)[] = new Array(size).fill(undefined);
  const calls: Call[] = [];
  const watchdog = new Watchdog({
    size,
    control: (worker) => controls[worker],
    requestYield: (worker) => calls.push(["yield", worker]),
    stuck: (worker, runningMs) => calls.push(["stuck", worker, runningMs]),
    recovered: (worker) => calls.push(["recovered", worker]),
    terminate: (worker, runningMs) => calls.push(["terminate", worker, runningMs]),
  }, { clock, ...options });
  /** Worker `worker` starts a record now. */
  const begin = (worker: number) => controls[worker] = snapshot(true, clock.wallNow());
  const end = (worker: number) => controls[worker] = snapshot(false, 0);
  return { clock, controls, calls, watchdog, begin, end };
}

Deno.test("Watchdog does nothing while records run within the slice", () => {
  const { clock, calls, watchdog, begin, end } = setup(2, { sliceMs: 50, hardLimitMs: 1000 });
  watchdog.check(); // no control blocks yet
  begin(0);
  end(1);
  clock.advance(49);
  watchdog.check();
  assert.deepEqual(calls, []);
  assert.equal(watchdog.yieldRequests, 0);
});

Deno.test("Watchdog reports a record past the slice once, then its end", () => {
  const { clock, calls, watchdog, begin, end } = setup(2, { sliceMs: 50, hardLimitMs: 1000 });
  begin(0);
  begin(1);
  clock.advance(50);
  end(1);
  watchdog.check();
  assert.deepEqual(calls, [["yield", 0], ["stuck", 0, 50]]);
  assert.equal(watchdog.yieldRequests, 1);

  clock.advance(100);
  watchdog.check();
  watchdog.check();
  assert.equal(calls.length, 2, "the same record is reported once");

  end(0);
  watchdog.check();
  assert.deepEqual(calls.slice(2), [["recovered", 0]]);
  watchdog.check();
  assert.equal(calls.length, 3, "recovered once");
});

Deno.test("Watchdog reports a new long record after a recovery", () => {
  const { clock, calls, watchdog, begin } = setup(1, { sliceMs: 50, hardLimitMs: 1000 });
  begin(0);
  clock.advance(60);
  watchdog.check();
  // The worker went straight on to another record (no idle check in between).
  begin(0);
  watchdog.check();
  assert.deepEqual(calls, [["yield", 0], ["stuck", 0, 60], ["recovered", 0]]);
  clock.advance(70);
  watchdog.check();
  assert.deepEqual(calls.slice(3), [["yield", 0], ["stuck", 0, 70]]);
  assert.equal(watchdog.yieldRequests, 2);
});

Deno.test("Watchdog terminates past the hard limit once, and stays quiet until reset", () => {
  const { clock, calls, watchdog, begin, end } = setup(2, { sliceMs: 50, hardLimitMs: 200 });
  begin(0);
  begin(1);
  clock.advance(60);
  end(1);
  watchdog.check();
  clock.advance(140);
  watchdog.check();
  assert.deepEqual(calls, [["yield", 0], ["stuck", 0, 60], ["terminate", 0, 200]]);
  assert.equal(watchdog.terminations, 1);

  clock.advance(500);
  watchdog.check();
  end(0); // the dying worker's block stops showing the record: not a recovery
  watchdog.check();
  begin(0);
  clock.advance(300);
  watchdog.check();
  assert.equal(calls.length, 3, "nothing more for a terminated worker");
  assert.equal(watchdog.terminations, 1);

  // The replacement gets a clean watch.
  watchdog.reset(0);
  begin(0);
  watchdog.check();
  assert.equal(calls.length, 3);
  clock.advance(50);
  watchdog.check();
  assert.deepEqual(calls.slice(3), [["yield", 0], ["stuck", 0, 50]]);
  end(0);
  watchdog.check();
  assert.deepEqual(calls.slice(5), [["recovered", 0]]);
});

Deno.test("Watchdog terminates a record first seen past the hard limit without a stuck report", () => {
  const { clock, calls, watchdog, begin } = setup(1, { sliceMs: 50, hardLimitMs: 200 });
  begin(0);
  clock.advance(250);
  watchdog.check();
  assert.deepEqual(calls, [["terminate", 0, 250]]);
});

Deno.test("Watchdog constructor rejects a bad slice or hard limit", () => {
  const clock = new ManualClock();
  const target = {
    size: 1,
    control: () => undefined,
    requestYield() {},
    stuck() {},
    recovered() {},
    terminate() {},
  };
  assert.throws(() => new Watchdog(target, { clock, sliceMs: 0 }), RangeError);
  assert.throws(() => new Watchdog(target, { clock, sliceMs: -5 }), RangeError);
  assert.throws(() => new Watchdog(target, { clock, sliceMs: NaN }), RangeError);
  assert.throws(() => new Watchdog(target, { clock, sliceMs: 50, hardLimitMs: 50 }), RangeError);
  assert.throws(() => new Watchdog(target, { clock, sliceMs: 50, hardLimitMs: 10 }), RangeError);
  assert.throws(() => new Watchdog(target, { clock, sliceMs: 6000 }), /Hard limit \(5000 ms\)/);
  const ok = new Watchdog(target, { clock });
  assert.equal(ok.sliceMs, 50);
  assert.equal(ok.hardLimitMs, 5000);
});

Deno.test("Watchdog.start checks on the clock's interval and stop cancels it", () => {
  const { clock, calls, watchdog, begin } = setup(1, { sliceMs: 50, hardLimitMs: 1000 });
  let checks = 0;
  const check = watchdog.check.bind(watchdog);
  watchdog.check = () => {
    checks++;
    check();
  };
  watchdog.start();
  watchdog.start(); // idempotent
  assert.equal(clock.pending, 1);
  clock.advance(9);
  assert.equal(checks, 0);
  clock.advance(1);
  assert.equal(checks, 1, "every sliceMs / 5 = 10 ms");
  begin(0);
  clock.advance(60);
  assert.equal(checks, 7);
  assert.deepEqual(calls, [["yield", 0], ["stuck", 0, 50]]);

  watchdog.stop();
  assert.equal(clock.pending, 0);
  clock.advance(1000);
  assert.equal(checks, 7);
  assert.equal(calls.length, 2);
});

Deno.test("Watchdog disposes its timer", () => {
  const { clock, watchdog } = setup(1);
  {
    using started = watchdog;
    started.start();
    assert.equal(clock.pending, 1);
  }
  assert.equal(clock.pending, 0);
});
