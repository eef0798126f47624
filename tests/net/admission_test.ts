/**
 * Admission of new connections on a ManualClock: unlimited, closed (rate 0), or
 * a token bucket at the rate the overload controller sets.
 */
import assert from "node:assert/strict";
import { Admission } from "../../core/net/admission.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

function waiting(admission: Admission, count: number): { done: number } {
  const state = { done: 0 };
  for (let i = 0; i < count; i++) admission.take().then(() => state.done++);
  return state;
}

async function advance(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 5) {
    clock.advance(5);
    await Promise.resolve();
  }
  await new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("Admission is unlimited by default, admits nobody at rate 0, and everyone when unlimited again", async () => {
  const clock = new ManualClock();
  const admission = new Admission(clock);
  await admission.take();
  admission.setRate(0);
  assert.equal(admission.isClosed, true);
  const state = waiting(admission, 5);
  await advance(clock, 500);
  assert.equal(state.done, 0, "admitted while closed");
  admission.release();
  await advance(clock, 5);
  assert.equal(state.done, 5);
  assert.equal(clock.pending, 0);
});

Deno.test("Admission lets a backlog in at the set rate", async () => {
  const clock = new ManualClock();
  const admission = new Admission(clock);
  admission.setRate(0);
  const state = waiting(admission, 1000);
  admission.setRate(100);
  await advance(clock, 1000);
  assert.ok(state.done >= 95 && state.done <= 115, `${state.done} admitted in 1 s at 100/s`);
  admission.setRate(400);
  await advance(clock, 500);
  assert.ok(state.done >= 280 && state.done <= 330, `${state.done} after another 0.5 s at 400/s`);
  assert.throws(() => admission.setRate(-1), RangeError);
  admission.release();
  await advance(clock, 5);
  assert.equal(state.done, 1000);
  assert.equal(clock.pending, 0);
});
