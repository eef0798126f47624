/**
 * FlowMonitor's overload effects and admission control, on a ManualClock.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { FlowMonitor } from "../../core/cluster/flow_monitor.ts";
import { MetricsRegistry } from "../../core/metrics/mod.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

function harness() {
  const clock = new ManualClock();
  const applied: boolean[] = [];
  const rates: number[] = [];
  const monitor = new FlowMonitor({
    metrics: new MetricsRegistry(),
    clock,
    log: getLogger(["stage", "test"]),
    router: { thresholdMs: 50, recoverMs: 25 },
    effects: { apply: (overloaded) => applied.push(overloaded), admit: (rate) => rates.push(rate) },
  });
  /** 100 ms of messages with this dispatch delay. */
  const tick = (delayMs: number, count = 50) => {
    for (let i = 0; i < count; i++) monitor.finished("s", 0, 2, delayMs, 1);
    clock.advance(100);
  };
  return { clock, monitor, applied, rates, tick };
}

Deno.test("FlowMonitor stops admitting on overload, reopens slowly while delays are low, and is unlimited after recovery", () => {
  const { monitor, applied, rates, tick } = harness();
  for (let i = 0; i < 10; i++) tick(5);
  assert.deepEqual(rates, [], "no admission limit while normal");
  for (let i = 0; i < 10 && !monitor.overloaded; i++) tick(200);
  assert.ok(monitor.overloaded);
  assert.deepEqual(applied, [true]);
  assert.equal(rates.at(-1), 0, "accepting did not stop");
  tick(200);
  assert.equal(monitor.admissionRate, 0, "reopened while delays are still high");
  tick(30); // between recover and threshold: hold
  assert.equal(monitor.admissionRate, 0);
  tick(5);
  assert.equal(monitor.admissionRate, 20, "reopens at a low rate");
  tick(5);
  assert.equal(monitor.admissionRate, 30, "grows 1.5x per step");
  tick(200);
  assert.equal(monitor.admissionRate, 0, "stops again when delays rise");
  for (let i = 0; i < 40 && monitor.overloaded; i++) tick(5);
  assert.ok(!monitor.overloaded, "never recovered");
  assert.deepEqual(applied, [true, false]);
  for (let i = 0; i < 40 && monitor.admissionRate !== Infinity; i++) tick(5);
  assert.equal(monitor.admissionRate, Infinity, "admission never became unlimited again");
  monitor[Symbol.dispose]();
});
