/**
 * StageClient against a real Stage process runtime (real workers, real loopback
 * sockets): codecs, pipelining, request correlation, timeouts, frame limits.
 */
import assert from "node:assert/strict";
import {
  ClientClosedError,
  FrameError,
  ReceiveTimeoutError,
  RequestTimeoutError,
  StageClient,
} from "../../core/client/mod.ts";
import { type Fixture, REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const START = REFERENCE + `
const receive = (socket: Stage.Socket, data: Stage.Data) => {
  switch (data.op) {
    case "hold": socket.held = data; return;
    case "release": {
      socket.commit({ ...data, reply: "release" });
      socket.commit({ ...(socket.held as object), reply: "held" });
      return;
    }
    case "ignore": return;
    case "big": return socket.commit({ text: "x".repeat(data.size) });
    default: return socket.commit(data);
  }
};
broker.ready("tcp://127.0.0.1:0?bson", () => receive);
broker.ready("tcp://127.0.0.1:0?json", () => receive);
`;

async function withStage(run: (fixture: Fixture) => Promise<void>): Promise<void> {
  await using fixture = await startFixture({ scripts: { "start.ts": START } });
  await run(fixture);
}

Deno.test("StageClient round-trips documents with the bson codec and values with json", async () => {
  await withStage(async (fixture) => {
    await using bson = await StageClient.connect({ port: fixture.port("?bson") });
    await bson.send({ op: "echo", text: "hello", n: 3, nested: { list: [1, "two"] } });
    assert.deepEqual(await bson.next(5000), {
      op: "echo",
      text: "hello",
      n: 3,
      nested: { list: [1, "two"] },
    });

    await using json = await StageClient.connect({ port: fixture.port("?json"), codec: "json" });
    await json.send({ op: "echo", text: "héllo ✓", list: [1.5, null, true] });
    assert.deepEqual(await json.next(5000), {
      op: "echo",
      text: "héllo ✓",
      list: [1.5, null, true],
    });
  });
});

Deno.test("StageClient delivers many pipelined frames in order, by iteration", async () => {
  await withStage(async (fixture) => {
    await using client = await StageClient.connect({
      port: fixture.port("?json"),
      codec: "json",
      maxQueuedFrames: 4096,
    });
    const count = 2000;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      sends.push(client.send({ op: "echo", i, pad: "p".repeat(i % 50) }));
    }
    await Promise.all(sends);
    const seen: number[] = [];
    for await (const message of client) {
      seen.push((message as { i: number }).i);
      if (seen.length === count) break;
    }
    assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i));
  });
});

Deno.test("StageClient.request matches replies by id even when they arrive out of order", async () => {
  await withStage(async (fixture) => {
    await using client = await StageClient.connect({ port: fixture.port("?bson") });
    const first = client.request<{ op: string; reply: string; id: number }>({ op: "hold" });
    const second = client.request<{ op: string; reply: string; id: number }>({ op: "release" });
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.op, "hold");
    assert.equal(a.reply, "held");
    assert.equal(b.op, "release");
    assert.equal(b.reply, "release");
    assert.notEqual(a.id, b.id);
    // Messages no request took still reach next().
    await client.send({ op: "echo", plain: true });
    assert.deepEqual(await client.next(5000), { op: "echo", plain: true });
    assert.equal(client.pendingRequests, 0);
  });
});

Deno.test("StageClient.request with a custom correlation field and with a match predicate", async () => {
  await withStage(async (fixture) => {
    await using client = await StageClient.connect({
      port: fixture.port("?json"),
      codec: "json",
      correlationField: "rid",
    });
    const reply = await client.request<{ rid: number; op: string }>({ op: "echo" });
    assert.equal(typeof reply.rid, "number");
    const matched = await client.request<number[]>([7, 8], {
      match: (message) => Array.isArray(message) && message[0] === 7,
    });
    assert.deepEqual(matched, [7, 8]);
    await assert.rejects(client.request("text"), TypeError);
  });
});

Deno.test("StageClient.request rejects with RequestTimeoutError when no reply comes", async () => {
  await withStage(async (fixture) => {
    await using client = await StageClient.connect({ port: fixture.port("?bson") });
    const error = await client.request({ op: "ignore" }, { timeout: 50 }).catch((e) => e);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.equal(error.timeoutMs, 50);
    assert.match(error.message, /within 50 ms/);
    assert.equal(client.pendingRequests, 0);
    await assert.rejects(client.next(20), ReceiveTimeoutError);
  });
});

Deno.test("StageClient refuses frames above maxFrame: sending rejects, receiving drops the connection", async () => {
  await withStage(async (fixture) => {
    await using client = await StageClient.connect({ port: fixture.port("?bson"), maxFrame: 1024 });
    const refused = await client.send({ op: "echo", text: "x".repeat(2000) }).catch((e) => e);
    assert.ok(refused instanceof FrameError, String(refused));
    assert.equal(refused.code, "too_large");
    assert.equal(refused.direction, "outgoing");
    assert.match(refused.message, /above maxFrame 1024/);
    // The connection is still usable after a refused send.
    await client.send({ op: "echo", ok: 1 });
    assert.deepEqual(await client.next(5000), { op: "echo", ok: 1 });

    const lost = new Promise<Error>((resolve) => client.on("disconnect", resolve));
    await client.send({ op: "big", size: 5000 });
    const error = await lost;
    assert.ok(error.cause instanceof FrameError);
    assert.equal(error.cause.code, "too_large");
    assert.equal(error.cause.direction, "incoming");
    assert.equal(client.state, "lost");
    await assert.rejects(client.send({ op: "echo" }), { name: "ConnectionLostError" });
  });
});

Deno.test("StageClient.close rejects what is pending and later calls with ClientClosedError", async () => {
  await withStage(async (fixture) => {
    const client = await StageClient.connect({ port: fixture.port("?bson") });
    const pending = assert.rejects(client.request({ op: "ignore" }), ClientClosedError);
    const waiting = assert.rejects(client.next(), ClientClosedError);
    await client.close();
    await pending;
    await waiting;
    await assert.rejects(client.send({ op: "echo" }), ClientClosedError);
    assert.equal(client.state, "closed");
    await client.close(); // twice is harmless
  });
});
