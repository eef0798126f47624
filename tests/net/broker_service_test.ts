/**
 * The broker over real TCP: echo with every codec, ordering under many clients,
 * limits, expiry, outgoing connections and socket handles across workers.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const ECHO = REFERENCE + `
for (const codec of ["bson", "json", "raw"]) {
  broker.ready("tcp://127.0.0.1:0?packet=1k,2k&" + codec, () => (socket, data) => {
    socket.commit(data);
  });
}
`;

Deno.test("BrokerService echoes a frame with each codec (bson, json, raw)", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  await using bson = await FrameClient.connect(fixture.port("bson"), "bson");
  await bson.send({ message: "echo", n: 1, nested: { list: [1, "two"] } });
  assert.deepEqual(await bson.next(), { message: "echo", n: 1, nested: { list: [1, "two"] } });

  await using json = await FrameClient.connect(fixture.port("json"), "json");
  await json.send({ message: "echo", list: [1, 2, 3] }, "text", 42);
  assert.deepEqual(await json.next(), { message: "echo", list: [1, 2, 3] });
  assert.equal(await json.next(), "text");
  assert.equal(await json.next(), 42);

  await using raw = await FrameClient.connect(fixture.port("raw"), "raw");
  await raw.send(new Uint8Array([1, 2, 3]), new Uint8Array(0));
  assert.deepEqual(await raw.next(), new Uint8Array([1, 2, 3]));
  assert.deepEqual(await raw.next(), new Uint8Array(0));
});

Deno.test("BrokerService processes every pipelined frame of one write and frames split across writes", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  await using client = await FrameClient.connect(fixture.port("json"), "json");
  await client.send(...Array.from({ length: 50 }, (_, i) => ({ i })));
  for (let i = 0; i < 50; i++) assert.deepEqual(await client.next(), { i });
  // One frame written a byte at a time.
  const frame = new TextEncoder().encode('....{"split":true}');
  new DataView(frame.buffer).setInt32(0, frame.length, true);
  for (const byte of frame) {
    await client.writeAll(new Uint8Array([byte]));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.deepEqual(await client.next(), { split: true });
});

Deno.test("BrokerService gives 200 concurrent clients sending 1,000 frames each every reply in order", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("bson");
  const clients = await Promise.all(
    Array.from({ length: 200 }, () => FrameClient.connect(port, "bson")),
  );
  try {
    await Promise.all(clients.map(async (client, c) => {
      const sending = (async () => {
        for (let batch = 0; batch < 10; batch++) {
          const frames = Array.from({ length: 100 }, (_, i) => ({ c, seq: batch * 100 + i }));
          await client.send(...frames);
        }
      })();
      for (let seq = 0; seq < 1000; seq++) {
        const reply = await client.next<{ c: number; seq: number }>(30_000);
        assert.equal(reply.c, c);
        assert.equal(reply.seq, seq, `client ${c} got ${reply.seq} where ${seq} was due`);
      }
      await sending;
    }));
  } finally {
    for (const client of clients) await client[Symbol.asyncDispose]();
  }
});

Deno.test("BrokerService closes only the socket that sends a frame over IN", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("json");
  await using good = await FrameClient.connect(port, "json");
  await using bad = await FrameClient.connect(port, "json");
  await good.send({ before: true });
  assert.deepEqual(await good.next(), { before: true });
  const header = new Uint8Array(4);
  new DataView(header.buffer).setInt32(0, 1025, true); // IN is 1k = 1024
  await bad.writeAll(header);
  await bad.closedByServer();
  await good.send({ after: true });
  assert.deepEqual(await good.next(), { after: true });
  assert.equal(fixture.stage().broker.closedByReason.get("frame_too_large"), 1);
});

Deno.test("BrokerService refuses a commit over OUT with a RangeError the script can catch", async () => {
  await using fixture = await startFixture({
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?packet=1k,100&json", () => (socket, data) => {
  try {
    socket.commit({ pad: "x".repeat(data.size) });
  } catch (error) {
    socket.commit({ error: error.name });
  }
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ size: 10 });
  assert.deepEqual(await client.next(), { pad: "x".repeat(10) });
  await client.send({ size: 200 });
  assert.deepEqual(await client.next(), { error: "RangeError" });
});

Deno.test("BrokerService closes an idle socket after its expire time (within ±20%)", async () => {
  await using fixture = await startFixture({
    scripts: {
      "start.ts": REFERENCE + `
const server = broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => socket.commit(data));
server.expire = 500;
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  const start = performance.now();
  await client.send({ hello: 1 }); // input resets the idle timer
  assert.deepEqual(await client.next(), { hello: 1 });
  await client.closedByServer(2000);
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 400 && elapsed <= 600, `closed after ${elapsed} ms, expected 500 ± 100`);
  assert.equal(fixture.stage().broker.closedByReason.get("expired"), 1);
});

Deno.test("broker.join connects out with the same framing; a refused connection rejects", async () => {
  await using fixture = await startFixture({
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json&name=upstream", () => (socket, data) => {
  socket.commit({ upstream: data.text.toUpperCase() });
});
broker.ready("tcp://127.0.0.1:0?json&name=front", () => async (client, data) => {
  try {
    const upstream = await broker.join("tcp://127.0.0.1:" + data.port + "?json", () => (socket, reply) => {
      client.commit(reply);
      socket.close();
    });
    upstream.commit({ text: data.text });
  } catch (error) {
    client.commit({ error: error.name });
  }
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port("front"), "json");
  await client.send({ port: fixture.port("upstream"), text: "hi" });
  assert.deepEqual(await client.next(), { upstream: "HI" });
  const unused = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (unused.addr as Deno.NetAddr).port;
  unused.close();
  await client.send({ port: closedPort, text: "nobody" });
  assert.deepEqual(await client.next(), { error: "ConnectionRefused" });
});

Deno.test("broker.f, broker.signal and broker.close reach a socket from another socket's handler", async () => {
  await using fixture = await startFixture({
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  switch (data.op) {
    case "whoami": return socket.commit({ id: socket.id });
    case "tell": return broker.f(data.to).commit({ from: socket.id, text: data.text });
    case "inject": return broker.signal(data.to, { op: "echo", text: data.text });
    case "echo": return socket.commit({ echo: data.text });
    case "kick": return broker.close(data.to);
  }
});
`,
    },
    workers: 2,
  });
  const port = fixture.port();
  await using a = await FrameClient.connect(port, "json");
  await using b = await FrameClient.connect(port, "json");
  await a.send({ op: "whoami" });
  await b.send({ op: "whoami" });
  const idA = (await a.next<{ id: number }>()).id;
  const idB = (await b.next<{ id: number }>()).id;
  await a.send({ op: "tell", to: idB, text: "hello" });
  assert.deepEqual(await b.next(), { from: idA, text: "hello" });
  await a.send({ op: "inject", to: idB, text: "injected" });
  assert.deepEqual(await b.next(), { echo: "injected" });
  await a.send({ op: "kick", to: idB });
  await b.closedByServer();
  await a.send({ op: "echo", text: "still here" });
  assert.deepEqual(await a.next(), { echo: "still here" });
});

Deno.test("BrokerService keeps serving new clients after many clients vanish mid-request", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("raw");
  for (let round = 0; round < 3; round++) {
    const clients = await Promise.all(
      Array.from({ length: 100 }, () => FrameClient.connect(port, "raw")),
    );
    await Promise.all(clients.map(async (client) => {
      for (let i = 0; i < 20; i++) {
        await client.send(new Uint8Array([round, i]));
        assert.deepEqual(await client.next(), new Uint8Array([round, i]));
      }
      await client.send(new Uint8Array([9])); // in flight when the client vanishes
      await client[Symbol.asyncDispose]();
    }));
  }
  await using late = await FrameClient.connect(port, "raw");
  await late.send(new Uint8Array([42]));
  assert.deepEqual(await late.next(), new Uint8Array([42]));
});

/** TcpExt ListenOverflows from /proc/net/netstat (undefined where it cannot be read). */
async function listenOverflows(): Promise<number | undefined> {
  try {
    const lines = (await Deno.readTextFile("/proc/net/netstat")).split("\n");
    const header = lines.find((line) => line.startsWith("TcpExt:"))?.split(/\s+/);
    const values = lines.filter((line) => line.startsWith("TcpExt:"))[1]?.split(/\s+/);
    const index = header?.indexOf("ListenOverflows") ?? -1;
    return index > 0 ? Number(values?.[index]) : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("BrokerService accepts 1,000 simultaneous connects without overflowing the backlog", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": ECHO } });
  const port = fixture.port("raw");
  const before = await listenOverflows();
  const conns = await Promise.all(
    Array.from({ length: 1000 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  try {
    const frame = new Uint8Array([5, 0, 0, 0, 7]);
    await Promise.all(conns.map((conn) => conn.write(frame)));
    await Promise.all(conns.map(async (conn) => {
      const reply = new Uint8Array(5);
      let read = 0;
      while (read < 5) read += (await conn.read(reply.subarray(read))) ?? 5;
      assert.deepEqual(reply, frame);
    }));
    const after = await listenOverflows();
    if (before !== undefined && after !== undefined) assert.equal(after - before, 0);
  } finally {
    for (const conn of conns) conn.close();
  }
});

Deno.test("BrokerService runs different sockets in parallel on different workers, one socket never concurrently", async () => {
  await using fixture = await startFixture({
    workers: 2,
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  const start = Date.now();
  while (Date.now() - start < data.spin) { /* hold the worker */ }
  socket.commit({ worker: stage.worker, start, end: Date.now() });
});
`,
    },
  });
  const port = fixture.port();
  await using a = await FrameClient.connect(port, "json");
  await using b = await FrameClient.connect(port, "json");
  type Span = { worker: number; start: number; end: number };
  await Promise.all([a.send({ spin: 300 }, { spin: 300 }), b.send({ spin: 300 })]);
  const [a1, a2, b1] = [await a.next<Span>(), await a.next<Span>(), await b.next<Span>()];
  assert.notEqual(a1.worker, b1.worker, "the two sockets have different home workers");
  assert.ok(a1.start < b1.end && b1.start < a1.end, "different sockets overlapped in time");
  assert.ok(a2.start >= a1.end, "frames of one socket never overlap");
});
