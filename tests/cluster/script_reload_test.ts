/**
 * ScriptStage.reload over real workers: a changed script is loaded by every
 * worker, work in flight finishes, a script that does not load changes
 * nothing, and each replacement is counted.
 */
import assert from "node:assert/strict";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const version = (n: number) =>
  REFERENCE + `
stage.waitfor("version", () => ${n});
stage.waitfor("slow", async (ms: number) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return "finished ${n}";
});
`;

const CONFIG = { "#startup": [["script+app"]], script: { "script+app": "app" } };

Deno.test("ScriptStage.reload loads the changed script in every worker; in-flight work finishes", async () => {
  await using fixture = await startFixture({
    scripts: { "app.ts": version(1) },
    config: CONFIG,
    workers: 2,
  });
  const { caller } = fixture.running;
  assert.equal(await caller.request("app:version", [], 2000), 1);

  await fixture.writeScript("app.ts", version(2));
  const slow = caller.request("app:slow", [300], 5000);
  const [report] = await fixture.running.reload();
  assert.equal(await slow, "finished 1", "the handler running during the reload completed");
  assert.equal(report?.stage, "app");
  assert.equal(report?.workers, 2);
  assert.equal(report?.unfinished, 0);
  const answers = await Promise.all(
    Array.from({ length: 20 }, () => caller.request("app:version", [], 2000)),
  );
  assert.deepEqual(new Set(answers), new Set([2]), "no worker runs the old script");

  const workers = fixture.running.workers();
  assert.deepEqual(workers.map((w) => [w.stage, w.worker, w.restarts]), [["app", 0, 1], [
    "app",
    1,
    1,
  ]]);
  const restarts = fixture.running.metrics.snapshot().find((f) =>
    f.name === "stage_worker_restarts_total"
  );
  assert.ok(restarts !== undefined && restarts.type === "counter");
  assert.deepEqual(restarts.samples, [{ labels: { stage: "app", cause: "reload" }, value: 2 }]);
});

Deno.test("ScriptStage.reload of a script that does not load rejects and keeps the workers", async () => {
  await using fixture = await startFixture({
    scripts: { "app.ts": version(1) },
    config: CONFIG,
    workers: 1,
  });
  const { caller } = fixture.running;
  await fixture.writeScript("app.ts", REFERENCE + `throw new Error("broken on purpose");\n`);
  await assert.rejects(fixture.running.reload(), (error: Error) => {
    assert.equal(error.name, "WorkerStartError");
    assert.match(error.message, /broken on purpose/);
    assert.match(error.message, /\(at file:\/\/\/.*\/scripts\/app\.ts:2:\d+\)/, "names the line");
    return true;
  });
  assert.equal(await caller.request("app:version", [], 2000), 1, "the old workers still serve");
  assert.equal(fixture.running.workers()[0]?.restarts, 0);
});

Deno.test("ScriptStage.workers reports what a worker runs and for how long", async () => {
  await using fixture = await startFixture({
    scripts: { "app.ts": version(1) },
    config: CONFIG,
    workers: 1,
  });
  const idle = fixture.running.workers()[0];
  assert.equal(idle?.state, "idle");
  assert.equal(idle?.task, null);
  const slow = fixture.running.caller.request("app:slow", [400], 5000);
  let busy;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    busy = fixture.running.workers()[0];
    if (busy?.inFlight === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(busy?.inFlight, 1);
  await slow;
  assert.ok((fixture.running.workers()[0]?.handled ?? 0) >= 1);
});
