/**
 * MainCaller: the main thread's requests and signals reach script and service
 * stages of a real process, and their replies and failures come back.
 */
import assert from "node:assert/strict";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const CALC = REFERENCE + `
let last: unknown = undefined;
stage.waitfor("add", (a: number, b: number) => a + b);
stage.waitfor("echo", (...values: unknown[]) => values);
stage.waitfor("boom", () => { throw new RangeError("no such thing"); });
stage.waitfor("remember", (value: unknown) => { last = value; });
stage.waitfor("recall", () => last);
`;

Deno.test("MainCaller requests a script stage and gets its replies and errors", async () => {
  await using fixture = await startFixture({
    scripts: { "calc.ts": CALC },
    config: {
      "#startup": [["=ticket+ticket", "script+calc"]],
      "=ticket+ticket": [1, {}],
      script: { "script+calc": "calc" },
    },
    workers: 1,
  });
  const caller = fixture.running.caller;
  assert.equal(await caller.request("calc:add", [2, 3], 2000), 5);
  // A last value that looks like request options stays a value.
  assert.deepEqual(await caller.request("calc:echo", [1, { timeout: 7 }], 2000), [
    1,
    { timeout: 7 },
  ]);
  await assert.rejects(caller.request("calc:boom", [], 2000), {
    name: "RangeError",
    message: "no such thing",
  });
  await assert.rejects(caller.request("nobody:add", [], 2000), { name: "StageNotFoundError" });
  await assert.rejects(caller.request("add", [], 2000), TypeError);
  await assert.rejects(caller.request(">lock.cb", [], 2000), TypeError);
  await assert.rejects(caller.request("calc:add", [], 0), RangeError);
  // A service stage answers too.
  const stats = await caller.request("ticket:#", [], 2000);
  assert.equal(typeof stats, "object");

  caller.signal("calc:remember", ["kept"]);
  await poll(
    "the signal to arrive",
    () => caller.request("calc:recall", [], 2000),
    (v) => v === "kept",
    3000,
  );
  assert.throws(() => caller.signal("<lock.*", []), TypeError);
});

Deno.test("MainCaller times out a request nobody answers", async () => {
  await using fixture = await startFixture({
    scripts: {
      "slow.ts": REFERENCE + `
stage.waitfor("never", () => new Promise(() => {}));
`,
    },
    config: { "#startup": [["script+slow"]], script: { "script+slow": "slow" } },
    workers: 1,
  });
  await assert.rejects(fixture.running.caller.request("slow:never", [], 150), {
    name: "RequestTimeoutError",
  });
});
