/** StageClient.send against a peer that stops reading: pending sends, then a full queue. */
import assert from "node:assert/strict";
import { SendQueueFullError, StageClient } from "../../core/client/mod.ts";
import { settledWithin, TestServer } from "./_servers.ts";

const MiB = 1024 * 1024;

Deno.test("StageClient.send stays pending while the peer does not read, then the bounded queue rejects", async () => {
  await using server = new TestServer("hold");
  await using client = await StageClient.connect({
    port: server.port,
    codec: "raw",
    maxFrame: 2 * MiB,
    maxQueuedFrames: 4,
  });
  const payload = new Uint8Array(MiB);
  // Sends resolve while the kernel buffers take the bytes, then one stays pending.
  const sends: Promise<void>[] = [];
  let stuck: Promise<void> | undefined;
  for (let i = 0; i < 64 && stuck === undefined; i++) {
    const send = client.send(payload);
    sends.push(send);
    const outcome = await settledWithin(send, 200);
    if (outcome === "pending") stuck = send;
    else assert.ok("value" in outcome, "sends before the stall resolve");
  }
  assert.ok(stuck !== undefined, "a send stays pending once the socket buffers are full");
  const handed = sends.length - 1;
  // The queue holds the stuck frame plus three more; the fifth is refused by name.
  for (let i = 0; i < 3; i++) sends.push(client.send(payload));
  const refused = await client.send(payload).catch((e) => e);
  assert.ok(refused instanceof SendQueueFullError, String(refused));
  assert.equal(refused.frames, 4);
  assert.match(refused.message, /limits 4 frames/);
  assert.equal(await settledWithin(stuck, 50), "pending", "still pending: nothing read yet");

  // The peer starts reading: every queued send resolves.
  const total = (handed + 4) * (MiB + 4);
  await Promise.all([server.drain(total), ...sends]);
  assert.equal(client.queuedFrames, 0);
});

Deno.test("StageClient stops reading at inboxLimit and resumes as next() drains, losing nothing", async () => {
  await using server = new TestServer("echo");
  await using client = await StageClient.connect({
    port: server.port,
    codec: "json",
    inboxLimit: 5,
  });
  const count = 300;
  await Promise.all(Array.from({ length: count }, (_, i) => client.send({ i })));
  await new Promise((resolve) => setTimeout(resolve, 30)); // let the inbox fill and reading pause
  for (let i = 0; i < count; i++) assert.deepEqual(await client.next(5000), { i });
});
