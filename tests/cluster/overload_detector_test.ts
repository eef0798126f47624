/**
 * OverloadDetector on a ManualClock: p95 over a sliding window, hysteresis, recovery.
 */
import assert from "node:assert/strict";
import {
  OverloadDetector,
  type OverloadDetectorOptions,
  type OverloadState,
} from "../../core/cluster/overload_detector.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

/** threshold 50 ms, recover 25 ms, window 1000 ms in 100 ms sub-windows. */
function setup(options: Partial<OverloadDetectorOptions> = {}) {
  const clock = new ManualClock();
  const changes: [OverloadState, number][] = [];
  const detector = new OverloadDetector({
    thresholdMs: 50,
    clock,
    onChange: (state, p95) => changes.push([state, p95]),
    ...options,
  });
  detector.start();
  /** For `ms`, records `delays` (cycled) per 100 ms sub-window, then lets it be evaluated. */
  const run = (ms: number, delays: readonly number[]) => {
    for (let t = 0; t < ms; t += 100) {
      for (const delay of delays) detector.record(delay);
      clock.advance(100);
    }
  };
  return { clock, detector, changes, run };
}

const many = (n: number, delay: number) => Array<number>(n).fill(delay);

Deno.test("OverloadDetector enters overloaded when the p95 delay exceeds the threshold", () => {
  using ctx = wrap(setup());
  ctx.run(100, many(50, 200));
  assert.equal(ctx.detector.state, "overloaded");
  assert.equal(ctx.detector.since, 100);
  assert.ok(Math.abs(ctx.detector.p95Ms - 200) <= 200 * 0.12, `p95 ${ctx.detector.p95Ms}`);
});

Deno.test("OverloadDetector stays normal when only 4% of delays are huge (p95, not max)", () => {
  using ctx = wrap(setup());
  ctx.run(3000, [...many(96, 1), ...many(4, 5000)]);
  assert.equal(ctx.detector.state, "normal");
  assert.ok(ctx.detector.p95Ms < 1.2, `p95 ${ctx.detector.p95Ms}`);
  ctx.run(1000, [...many(90, 1), ...many(10, 5000)]); // 10% huge
  assert.equal(ctx.detector.state, "overloaded");
});

Deno.test("OverloadDetector needs minSamples in the window before entering", () => {
  using ctx = wrap(setup({ minSamples: 20 }));
  ctx.run(500, many(3, 500)); // 15 samples in the window
  assert.equal(ctx.detector.state, "normal");
  ctx.run(200, many(3, 500)); // 21
  assert.equal(ctx.detector.state, "overloaded");
});

Deno.test("OverloadDetector recovers only after a whole window below recoverMs", () => {
  using ctx = wrap(setup());
  ctx.run(100, many(50, 200)); // overloaded at 100
  // Low delays from now on; the high sub-window leaves the window at 1100.
  ctx.run(1000, many(50, 1));
  assert.equal(ctx.clock.now(), 1100);
  assert.ok(ctx.detector.p95Ms < 25, `p95 ${ctx.detector.p95Ms}`);
  assert.equal(ctx.detector.state, "overloaded");
  ctx.run(900, many(50, 1));
  assert.equal(ctx.detector.state, "overloaded", "a window below recover has not passed yet");
  ctx.run(100, many(50, 1));
  assert.equal(ctx.detector.state, "normal");
  assert.equal(ctx.detector.since, 2100);
});

Deno.test("OverloadDetector restarts the recovery window when the delay rises again", () => {
  using ctx = wrap(setup());
  ctx.run(100, many(50, 200));
  ctx.run(1500, many(50, 1)); // below recover since 1100
  ctx.run(100, many(50, 30)); // p95 30 ms: above recover, below threshold
  ctx.run(1000, many(50, 1));
  assert.equal(ctx.detector.state, "overloaded");
  ctx.run(1000, many(50, 1));
  assert.equal(ctx.detector.state, "normal");
});

Deno.test("OverloadDetector does not flap while the delay swings between recover and threshold", () => {
  using ctx = wrap(setup());
  ctx.run(100, many(50, 200));
  for (let i = 0; i < 50; i++) ctx.run(100, many(50, i % 2 === 0 ? 30 : 45));
  assert.equal(ctx.detector.state, "overloaded");
  assert.equal(ctx.detector.transitions, 1);

  using fresh = wrap(setup());
  for (let i = 0; i < 50; i++) fresh.run(100, many(50, i % 2 === 0 ? 30 : 45));
  assert.equal(fresh.detector.state, "normal");
  assert.equal(fresh.detector.transitions, 0);
});

Deno.test("OverloadDetector recovers over a gap with no samples", () => {
  using ctx = wrap(setup());
  ctx.run(100, many(50, 200));
  ctx.clock.advance(1000); // the window empties at 1100
  assert.equal(ctx.detector.p95Ms, 0);
  assert.equal(ctx.detector.state, "overloaded");
  ctx.clock.advance(1000);
  assert.equal(ctx.detector.state, "normal");
  assert.equal(ctx.detector.since, 2100);
});

Deno.test("OverloadDetector calls onChange exactly once per transition", () => {
  using ctx = wrap(setup());
  ctx.run(500, many(50, 200));
  ctx.run(3000, many(50, 1));
  ctx.run(500, many(50, 400));
  assert.deepEqual(ctx.changes.map(([state]) => state), ["overloaded", "normal", "overloaded"]);
  assert.equal(ctx.detector.transitions, 3);
  const [[, enteredAt], [, leftAt]] = ctx.changes as [
    [OverloadState, number],
    [OverloadState, number],
  ];
  assert.ok(enteredAt > 50 && leftAt < 25, `p95s ${enteredAt}, ${leftAt}`);
});

Deno.test("OverloadDetector counts delays recorded before a late evaluation as the newest", () => {
  const clock = new ManualClock();
  const detector = new OverloadDetector({ thresholdMs: 50, clock });
  clock.advance(5000); // e.g. a stalled event loop: no evaluation ran
  for (let i = 0; i < 50; i++) detector.record(300);
  clock.advance(3000);
  assert.equal(detector.evaluate(), "overloaded");
  clock.advance(900);
  detector.evaluate();
  assert.ok(detector.p95Ms > 250, `still in the window: p95 ${detector.p95Ms}`);
  clock.advance(100);
  detector.evaluate();
  assert.equal(detector.p95Ms, 0);
});

Deno.test("OverloadDetector.stop and dispose cancel the evaluation timer", () => {
  const clock = new ManualClock();
  {
    using detector = new OverloadDetector({ thresholdMs: 10, clock });
    detector.start();
    detector.start();
    assert.equal(clock.pending, 1);
  }
  assert.equal(clock.pending, 0);
});

Deno.test("OverloadDetector rejects invalid options with a RangeError naming the option", () => {
  const clock = new ManualClock();
  const bad: [Partial<OverloadDetectorOptions>, RegExp][] = [
    [{ thresholdMs: 0 }, /thresholdMs .*got 0/],
    [{ thresholdMs: -5 }, /thresholdMs/],
    [{ thresholdMs: NaN }, /thresholdMs/],
    [{ thresholdMs: 10, recoverMs: 0 }, /recoverMs .*\(0, 10\].*got 0/],
    [{ thresholdMs: 10, recoverMs: 11 }, /recoverMs/],
    [{ thresholdMs: 10, bucketMs: 0 }, /bucketMs/],
    [{ thresholdMs: 10, windowMs: 50 }, /windowMs .*bucketMs \(100\).*got 50/],
    [{ thresholdMs: 10, windowMs: 10_000, bucketMs: 1 }, /windowMs/],
    [{ thresholdMs: 10, minSamples: -1 }, /minSamples/],
    [{ thresholdMs: 10, minSamples: 1.5 }, /minSamples/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => new OverloadDetector({ thresholdMs: 1, clock, ...options }),
      (error) => error instanceof RangeError && message.test(error.message),
      JSON.stringify(options),
    );
  }
  const ok = new OverloadDetector({ thresholdMs: 10, recoverMs: 10, windowMs: 100, clock });
  assert.equal(ok.state, "normal");
});

/** Stops the detector when the test's scope ends. */
function wrap<T extends { detector: OverloadDetector }>(ctx: T): T & Disposable {
  return { ...ctx, [Symbol.dispose]: () => ctx.detector.stop() };
}
