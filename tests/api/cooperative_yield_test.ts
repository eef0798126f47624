/**
 * stage.yield() and stage.slice(): long-running handlers let other work on their
 * worker run, and honour the control block's yield flag.
 */
import assert from "node:assert/strict";
import { CooperativeYield } from "../../core/api/cooperative_yield.ts";
import { ControlBlock } from "../../core/pool/control_block.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

Deno.test("CooperativeYield.slice yields every item and clears a raised yield flag", async () => {
  const block = ControlBlock.create();
  const yields = new CooperativeYield(block);
  block.requestYield();
  const seen: number[] = [];
  for await (const n of yields.slice(new Set([1, 2, 3]))) seen.push(n);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(block.yieldRequested, false, "the request was honoured");
  assert.ok(yields.count >= 1);
  await assert.rejects(yields.slice(5 as unknown as number[]).next(), TypeError);
});

Deno.test("a handler looping with stage.yield() lets other sockets on its worker be served", async () => {
  await using fixture = await startFixture({
    workers: 1,
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  if (data.op === "long") {
    const start = Date.now();
    let rounds = 0;
    const forever = function* () { for (let i = 0; ; i++) yield i; };
    for await (const _ of stage.slice(forever())) {
      if (Date.now() - start > 1500) break;
      rounds++;
    }
    await stage.yield();
    return socket.commit({ long: "done", rounds });
  }
  socket.commit({ quick: Date.now() });
});
`,
    },
  });
  await using long = await FrameClient.connect(fixture.port(), "json");
  await using quick = await FrameClient.connect(fixture.port(), "json");
  await long.send({ op: "long" });
  await new Promise((resolve) => setTimeout(resolve, 100)); // the long loop is running
  const sent = Date.now();
  await quick.send({ op: "quick" });
  const reply = await quick.next<{ quick: number }>();
  assert.ok(Date.now() - sent < 1000, `the quick reply took ${Date.now() - sent} ms`);
  assert.ok(reply.quick > 0);
  assert.equal((await long.next<{ long: string }>(5000)).long, "done");
});

Deno.test("CooperativeYield.honour yields only when the watchdog asked, and clears the request", async () => {
  let requested = false;
  const yields = new CooperativeYield({
    get yieldRequested() {
      return requested;
    },
    clearYield() {
      requested = false;
    },
  });
  assert.equal(yields.honour(), undefined);
  requested = true;
  const pending = yields.honour();
  assert.ok(pending instanceof Promise);
  assert.equal(requested, false);
  await pending;
  assert.equal(yields.count, 1);
});
