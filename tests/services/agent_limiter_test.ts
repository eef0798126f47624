/** RequestLimiter: the agent's bound on requests in flight, with a bounded FIFO queue. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { RequestLimiter } from "../../core/services/request_limiter.ts";

/** Jobs that run until the test settles them. */
function manualJobs(concurrency: number, queue: number) {
  const running = new Map<number, { resolve(): void; reject(error: Error): void }>();
  const started: number[] = [];
  const errors: unknown[] = [];
  let peak = 0;
  const limiter = new RequestLimiter<number>({
    concurrency,
    queue,
    run: (job) =>
      new Promise<void>((resolve, reject) => {
        started.push(job);
        running.set(job, { resolve, reject });
        peak = Math.max(peak, running.size);
      }).finally(() => running.delete(job)),
    onError: (error) => errors.push(error),
  });
  return { limiter, running, started, errors, peak: () => peak };
}

/** Lets settled jobs release their slots (a few microtask turns). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("RequestLimiter runs at most `concurrency` jobs and starts the rest in arrival order", async () => {
  const { limiter, running, started } = manualJobs(2, 10);
  for (let job = 0; job < 5; job++) assert.equal(limiter.offer(job), true);
  assert.deepEqual(started, [0, 1]);
  assert.equal(limiter.active, 2);
  assert.equal(limiter.waiting, 3);
  running.get(1)!.resolve();
  await settle();
  assert.deepEqual(started, [0, 1, 2]);
  running.get(0)!.resolve();
  running.get(2)!.resolve();
  await settle();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.equal(limiter.waiting, 0);
  for (const job of [...running.values()]) job.resolve();
  await settle();
  assert.equal(limiter.active, 0);
});

Deno.test("RequestLimiter refuses a job when the queue is full (queue 0: no waiting at all)", async () => {
  const { limiter, running } = manualJobs(1, 1);
  assert.deepEqual([limiter.offer(1), limiter.offer(2), limiter.offer(3)], [true, true, false]);
  const none = manualJobs(1, 0);
  assert.deepEqual([none.limiter.offer(1), none.limiter.offer(2)], [true, false]);
  running.get(1)!.resolve();
  await settle();
  assert.equal(limiter.offer(4), true, "a slot moved on, so there is room to wait again");
  for (const job of [...running.values(), ...none.running.values()]) job.resolve();
  await settle();
  running.get(4)?.resolve();
  await settle();
});

Deno.test("RequestLimiter frees the slot of a job that rejects or throws, and reports it", async () => {
  const errors: unknown[] = [];
  const limiter = new RequestLimiter<string>({
    concurrency: 1,
    queue: 5,
    run: (job) => {
      if (job === "throw") throw new Error("thrown");
      return job === "reject" ? Promise.reject(new Error("rejected")) : Promise.resolve();
    },
    onError: (error) => errors.push((error as Error).message),
  });
  limiter.offer("throw");
  limiter.offer("reject");
  limiter.offer("ok");
  await settle();
  assert.deepEqual(errors, ["thrown", "rejected"]);
  assert.equal(limiter.active, 0);
  assert.equal(limiter.waiting, 0);
});

Deno.test("RequestLimiter.clear takes the waiting jobs in order and leaves running ones", async () => {
  const { limiter, running, started } = manualJobs(1, 5);
  for (const job of [1, 2, 3]) limiter.offer(job);
  assert.deepEqual(limiter.clear(), [2, 3]);
  assert.equal(limiter.waiting, 0);
  running.get(1)!.resolve();
  await settle();
  assert.deepEqual(started, [1], "cleared jobs never start");
});

Deno.test("RequestLimiter rejects a bad concurrency or queue", () => {
  const run = () => Promise.resolve();
  assert.throws(() => new RequestLimiter({ concurrency: 0, queue: 1, run }), RangeError);
  assert.throws(() => new RequestLimiter({ concurrency: 1.5, queue: 1, run }), RangeError);
  assert.throws(() => new RequestLimiter({ concurrency: 1, queue: -1, run }), /queue/);
});

Deno.test("RequestLimiter never exceeds its limit, starts in FIFO order and loses no accepted job", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 6 }),
      fc.array(fc.oneof(fc.constant("offer" as const), fc.nat(5)), { maxLength: 60 }),
      async (concurrency, queue, steps) => {
        const { limiter, running, started, peak } = manualJobs(concurrency, queue);
        const accepted: number[] = [];
        let next = 0;
        for (const step of steps) {
          if (step === "offer") {
            const job = next++;
            if (limiter.offer(job)) accepted.push(job);
            else assert.equal(limiter.waiting, queue, "refused only with a full queue");
          } else {
            [...running.values()][step % Math.max(running.size, 1)]?.resolve();
            await settle();
          }
          assert.ok(limiter.active <= concurrency);
        }
        while (running.size > 0) {
          for (const job of [...running.values()]) job.resolve();
          await settle();
        }
        assert.ok(peak() <= concurrency);
        assert.deepEqual(started, accepted, "every accepted job started, in arrival order");
      },
    ),
    { numRuns: 60 },
  );
});
