/**
 * SharedTable: process-wide variables with lock-free snapshot reads.
 */
import assert from "node:assert/strict";
import { SharedTable, SharedTableFullError } from "../../core/ring/shared_table.ts";

Deno.test("SharedTable creates a variable once and finds it by name from another attachment", () => {
  const table = SharedTable.create({ slots: 4, valueBytes: 1024 });
  const score = table.open("score", { best: 1 });
  assert.deepEqual(score.get(), { best: 1 });
  const other = new SharedTable(table.buffer);
  const same = other.open("score", { best: 999 });
  assert.deepEqual(same.get(), { best: 1 }, "the first open's initial value wins");
  same.set({ best: 7 });
  assert.deepEqual(score.get(), { best: 7 });
  assert.deepEqual(score.update((v) => ({ best: v.best * 2 })), { best: 14 });
  assert.deepEqual(same.get(), { best: 14 });
  assert.equal(other.used, 1);
  const when = new Date(0);
  assert.deepEqual(table.open("rich", { when, map: new Map([[1, "a"]]) }).get(), {
    when,
    map: new Map([[1, "a"]]),
  });
});

Deno.test("SharedTable refuses an oversized value, a full table and a bad name with clear errors", () => {
  const table = SharedTable.create({ slots: 1, valueBytes: 64 });
  assert.throws(() => table.open("big", "x".repeat(100)), /exceeds the limit of 64/);
  assert.equal(table.used, 0, "a refused initial value does not use a slot");
  const small = table.open("small", 1);
  assert.throws(() => small.set("y".repeat(100) as unknown as number), SharedTableFullError);
  assert.equal(small.get(), 1, "a refused set leaves the value unchanged");
  assert.throws(() => table.open("another", 2), /all 1 slots are in use/);
  assert.throws(() => table.open("", 0), TypeError);
  assert.throws(() => small.update(() => Promise.resolve(2) as unknown as number), /synchronous/);
});

Deno.test("SharedTable: concurrent updates from two workers are exact and readers never see a torn value", async () => {
  const table = SharedTable.create({ slots: 2, valueBytes: 256 });
  table.open("counter", { n: 0, check: 0, list: [0, 0, 0] });
  const updates = 5000;
  const url = new URL("./_shared_table_worker.ts", import.meta.url);
  const workers = [0, 1, 2].map(() => new Worker(url, { type: "module" }));
  try {
    const results = await Promise.all(
      workers.map((worker, i) =>
        new Promise<Record<string, number>>((resolve, reject) => {
          worker.onmessage = (event) => resolve(event.data);
          worker.onerror = (event) => {
            event.preventDefault();
            reject(new Error(event.message));
          };
          worker.postMessage({
            buffer: table.buffer,
            role: i < 2 ? "writer" : "reader",
            updates: i < 2 ? updates : 2 * updates,
          });
        })
      ),
    );
    const reader = results[2]!;
    assert.equal(reader.problems, 0, "no torn or backwards read");
    assert.ok((reader.reads ?? 0) > 0);
    assert.deepEqual(table.open("counter", { n: -1, check: 0, list: [] }).get(), {
      n: 2 * updates,
      check: -2 * updates,
      list: [2 * updates, 2 * updates, 2 * updates],
    });
  } finally {
    for (const worker of workers) worker.terminate();
  }
});
