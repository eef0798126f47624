/**
 * `broker.ready("udp://…")` and `broker.join("udp://…")` against a real Stage
 * runtime (real workers, real datagram sockets on 127.0.0.1).
 */
import assert from "node:assert/strict";
import { BSON } from "bson";
import { type Fixture, REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";
import { poll } from "../_helpers/poll.ts";
import type { BrokerLimits } from "../../core/net/broker_service.ts";
import { UdpClient } from "./_udp_client.ts";

const START = REFERENCE + `
const receive = (socket: Stage.Socket, data: any) => {
  switch (data.op) {
    case "set": socket.user = data.value; return socket.commit({ ok: true, id: socket.id });
    case "get":
      return socket.commit({
        user: socket.user ?? null, id: socket.id, remote: socket.remote, local: socket.local,
      });
    case "bye": socket.commit({ bye: socket.id }); return socket.close();
    case "big":
      try {
        socket.commit({ big: "x".repeat(data.n) });
      } catch (error) {
        socket.commit({ error: (error as Error).name + ": " + (error as Error).message });
      }
      return;
    case "spin": {
      const end = Date.now() + data.ms;
      while (Date.now() < end) { /* busy */ }
      return socket.commit({ spun: data.seq });
    }
    case "join": return (async () => {
      const joined = await broker.join("udp://127.0.0.1:" + data.port + "?json",
        () => (peer: Stage.Socket, reply: unknown) => {
          socket.commit({ joined: reply, local: peer.local, remote: peer.remote });
          peer.close();
        });
      joined.commit({ hello: "over udp" });
    })();
    default: return socket.commit(data);
  }
};
broker.ready("udp://127.0.0.1:0?json&packet=1k", () => receive);
broker.ready("udp://127.0.0.1:0?bson", () => receive);
broker.ready("udp://127.0.0.1:0?raw", () => (socket: Stage.Socket, data: Uint8Array) => {
  socket.commit(data.slice().reverse());
});
const short = broker.ready("udp://127.0.0.1:0?json&name=short", () => receive);
short.expire = 300;
`;

async function withStage(
  run: (fixture: Fixture) => Promise<void>,
  limits?: Partial<BrokerLimits>,
): Promise<void> {
  await using fixture = await startFixture({
    scripts: { "start.ts": START },
    ...(limits === undefined ? {} : { limits }),
  });
  await run(fixture);
}

const drops = (fixture: Fixture) => Object.fromEntries(fixture.stage().broker.udpDroppedByReason);

Deno.test("broker.ready udp:// echoes json datagrams and gives each peer its own socket", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using a = new UdpClient();
    await using b = new UdpClient();
    const setA = await a.json(port, { op: "set", value: "alice" });
    const setB = await b.json(port, { op: "set", value: "bob" });
    assert.equal(setA.ok, true);
    assert.notEqual(setA.id, setB.id);
    const getA = await a.json(port, { op: "get" });
    const getB = await b.json(port, { op: "get" });
    assert.deepEqual(getA, {
      user: "alice",
      id: setA.id,
      remote: a.address,
      local: `127.0.0.1:${port}`,
    });
    assert.equal(getB.user, "bob");
    assert.equal(getB.id, setB.id);
    assert.deepEqual(await a.json(port, { echo: [1, 2, 3] }), { echo: [1, 2, 3] });
    assert.equal(fixture.stage().broker.socketCount, 2);
    const { in: bytesIn, out: bytesOut } = fixture.stage().broker.byteTotals();
    assert.ok(bytesIn > 0 && bytesOut > 0, `bytes in ${bytesIn}, out ${bytesOut}`);
    const datagrams = fixture.stage().broker.udpDatagrams();
    assert.deepEqual(datagrams, { in: 5, out: 5 });
    // A listener's peers expire after 60 s of silence unless told otherwise.
    const open = fixture.stage().broker.reopen(Number(setA.id))!;
    assert.equal(JSON.parse(new TextDecoder().decode(open)).moved.expire, 60_000);
  });
});

Deno.test("broker.ready udp:// takes a bson datagram as the document and raw as bytes", async () => {
  await withStage(async (fixture) => {
    await using client = new UdpClient();
    const reply = await client.bson(fixture.port("?bson"), { op: "echo", n: 7 });
    assert.deepEqual(reply, { op: "echo", n: 7 });
    await client.send(fixture.port("?raw"), new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await client.next()).bytes], [3, 2, 1]);
  });
});

Deno.test("broker.ready udp:// socket.close() forgets the peer; its next datagram is a new socket", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using client = new UdpClient();
    const first = await client.json(port, { op: "set", value: 1 });
    const bye = await client.json(port, { op: "bye" });
    assert.equal(bye.bye, first.id);
    await poll(
      "peer forgotten",
      () => Promise.resolve(fixture.stage().broker.closedByReason.get("script") ?? 0),
      (closed) => closed === 1,
    );
    const again = await client.json(port, { op: "get" });
    assert.notEqual(again.id, first.id);
    assert.equal(again.user, null);
  });
});

Deno.test("broker.ready udp:// peers expire after server.expire of silence", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("name=short");
    await using client = new UdpClient();
    const first = await client.json(port, { op: "set", value: "x" });
    await poll(
      "peer expired",
      () => Promise.resolve(fixture.stage().broker.closedByReason.get("expired") ?? 0),
      (expired) => expired === 1,
      5000,
    );
    assert.equal(fixture.stage().broker.socketCount, 0);
    assert.deepEqual(fixture.stage().broker.registrySizes(), {
      connections: 0,
      dirty: 0,
      inbound: 0,
      perIp: 0,
    });
    const again = await client.json(port, { op: "get" });
    assert.notEqual(again.id, first.id);
    assert.equal(again.user, null);
  });
});

Deno.test("broker.ready udp:// drops and counts datagrams over IN; commit over OUT throws", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using client = new UdpClient();
    const oversize = new TextEncoder().encode(JSON.stringify({ pad: "y".repeat(2000) }));
    await client.send(port, oversize);
    await poll(
      "too_large counted",
      () => Promise.resolve(drops(fixture)),
      (d) => d.too_large === 1,
    );
    assert.equal(client.queued, 0);
    // The peer was never opened by the oversize datagram; a good one opens it.
    const reply = await client.json(port, { op: "big", n: 2000 });
    assert.match(String(reply.error), /^RangeError: .*exceeds the socket's OUT limit of 1028/);
    // Exactly at the limits: a 1024-byte datagram in and out.
    const exact = JSON.stringify({ op: "echo", pad: "z".repeat(1024 - 22) });
    assert.equal(exact.length, 1024);
    assert.equal((await client.json(port, JSON.parse(exact))).pad, JSON.parse(exact).pad);
    const snapshot = fixture.running.metrics.snapshot();
    const sample = (name: string, label: string, value: string) => {
      const family = snapshot.find((candidate) => candidate.name === name);
      assert.ok(family !== undefined && family.type === "counter", `no counter ${name}`);
      return family.samples.find((s) => s.labels[label] === value)?.value;
    };
    assert.equal(sample("stage_udp_dropped_total", "reason", "too_large"), 1);
    assert.equal(sample("stage_udp_datagrams_total", "direction", "in"), 3);
    assert.equal(sample("stage_udp_datagrams_total", "direction", "out"), 2);
  });
});

Deno.test("broker.ready udp:// drops a bad BSON datagram without affecting other peers", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("?bson");
    await using bad = new UdpClient();
    await using good = new UdpClient();
    await bad.send(port, new Uint8Array([9, 0, 0, 0, 1, 2, 3])); // says 9 bytes, has 7
    await bad.send(port, new Uint8Array([1, 2]));
    await poll(
      "malformed counted",
      () => Promise.resolve(drops(fixture)),
      (d) => d.malformed === 2,
    );
    assert.equal(fixture.stage().broker.socketCount, 0); // dropped before any peer opened
    // A well-framed document with a bad element type: the worker's decoder refuses it
    // (logged as a script error of the receive handler), the peer lives on.
    const garbage = new Uint8Array([12, 0, 0, 0, 0x7e, 0x61, 0, 1, 2, 3, 4, 0]);
    await bad.send(port, garbage);
    assert.deepEqual(await good.bson(port, { op: "echo", from: "good" }), {
      op: "echo",
      from: "good",
    });
    assert.deepEqual(await bad.bson(port, { op: "echo", from: "bad" }), {
      op: "echo",
      from: "bad",
    });
    assert.equal(bad.queued, 0);
  });
});

Deno.test("broker.ready udp:// refuses a new peer over max_per_ip and counts the drop", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using a = new UdpClient();
    await using b = new UdpClient();
    await using c = new UdpClient();
    await a.json(port, { op: "get" });
    await b.json(port, { op: "get" });
    await c.sendJson(port, { op: "get" });
    await poll(
      "max_per_ip drop",
      () => Promise.resolve(drops(fixture)),
      (d) => d.max_per_ip === 1,
    );
    assert.equal(fixture.stage().broker.refusedByReason.get("max_per_ip"), 1);
    assert.equal(c.queued, 0);
    assert.equal(fixture.stage().broker.socketCount, 2);
  }, { maxPerIp: 2 });
});

Deno.test("broker.ready udp:// serves a quiet peer while another floods past its pending bound", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using flooder = new UdpClient();
    await using quiet = new UdpClient();
    await flooder.json(port, { op: "get" }); // opened
    // Each flood datagram takes 20 ms of a worker; the flooder's datagrams run one at a time.
    for (let seq = 0; seq < 100; seq++) await flooder.sendJson(port, { op: "spin", ms: 20, seq });
    // The flooder holds at most 16 datagrams for its handlers: the rest is dropped.
    await poll("pending drops", () => Promise.resolve(drops(fixture)), (d) => (d.pending ?? 0) > 0);
    const reply = await quiet.json(port, { op: "echo", quiet: true });
    assert.deepEqual(reply, { op: "echo", quiet: true });
    // Served while the flooder's backlog was still running, not after it.
    const taken = () =>
      fixture.stage().broker.udpDatagrams().in - 2 - (drops(fixture).pending ?? 0);
    const answered = flooder.queued;
    assert.ok(answered < taken(), `quiet peer waited for the whole flood (${answered}/${taken()})`);
    // Every datagram taken is answered; the dropped ones never reach a handler.
    await poll("flood answered", () => Promise.resolve(flooder.queued), (n) => n === taken());
    assert.equal(flooder.queued, taken());
  }, { maxPendingFramesPerSocket: 16 });
});

Deno.test("broker.join udp:// sends to a server and takes its replies as frames", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("packet=1k");
    await using server = new UdpClient(); // a plain UDP server: replies to the sender
    await using client = new UdpClient();
    await client.sendJson(port, { op: "join", port: server.port });
    const request = await server.next();
    assert.deepEqual(JSON.parse(new TextDecoder().decode(request.bytes)), { hello: "over udp" });
    await server.sendJson(Number(request.from.split(":")[1]), { echo: "back" });
    const reply = await client.nextJson();
    assert.deepEqual(reply.joined, { echo: "back" });
    assert.equal(reply.remote, server.address);
    assert.equal(reply.local, `0.0.0.0:${request.from.split(":")[1]}`);
  });
});

Deno.test("broker.join udp:// drops datagrams from addresses other than its server", async () => {
  const script = REFERENCE + `
broker.ready("udp://127.0.0.1:0?json", () => (socket: Stage.Socket, data: any) => {
  (async () => {
    const joined = await broker.join("udp://127.0.0.1:" + data.port + "?json",
      () => (_peer: Stage.Socket, reply: any) => socket.commit({ reply }));
    joined.commit({ local: joined.local });
  })();
});
`;
  await using fixture = await startFixture({ scripts: { "start.ts": script } });
  await using server = new UdpClient();
  await using stranger = new UdpClient();
  await using client = new UdpClient();
  await client.sendJson(fixture.port(), { port: server.port });
  const request = await server.next();
  const joinedPort = Number(request.from.split(":")[1]);
  await stranger.sendJson(joinedPort, { from: "stranger" });
  await poll(
    "stranger dropped",
    () => Promise.resolve(drops(fixture)),
    (d) => d.stranger === 1,
  );
  await server.sendJson(joinedPort, { from: "server" });
  assert.deepEqual((await client.nextJson()).reply, { from: "server" });
});

Deno.test("broker.ready udp:// URL options are checked in the script", async () => {
  const script = REFERENCE + `
const errors: string[] = [];
for (const url of ["udp://127.0.0.1:0?join=10.0.0.1", "udp://127.0.0.1:0?loopback=1"]) {
  try { broker.ready(url, () => {}); } catch (error) { errors.push((error as Error).message); }
}
broker.ready("udp://127.0.0.1:0?json", () => (socket: Stage.Socket) => {
  broker.join("udp://127.0.0.1:9?join=239.1.1.1", () => {}).catch((error) => {
    socket.commit({ errors, join: (error as Error).message });
  });
});
`;
  await using fixture = await startFixture({ scripts: { "start.ts": script } });
  await using client = new UdpClient();
  const reply = await client.json(fixture.port(), {});
  assert.deepEqual(reply.errors, [
    `Cannot use UDP address "udp://127.0.0.1:0?join=10.0.0.1": join group "10.0.0.1" is not a multicast address`,
    `Cannot use UDP address "udp://127.0.0.1:0?loopback=1": flag "loopback" takes no value, found "1"`,
  ]);
  assert.equal(
    reply.join,
    `Cannot use UDP address "udp://127.0.0.1:9?join=239.1.1.1": option "join" is for broker.ready listeners only`,
  );
});

Deno.test("broker.ready udp:// server.stop() keeps known peers and drops new ones", async () => {
  const script = REFERENCE + `
const server = broker.ready("udp://127.0.0.1:0?json", () => (socket: Stage.Socket, data: any) => {
  if (data.op === "stop") server.stop();
  socket.commit({ id: socket.id });
});
`;
  await using fixture = await startFixture({ scripts: { "start.ts": script } });
  const port = fixture.port();
  await using known = new UdpClient();
  await using late = new UdpClient();
  const first = await known.json(port, { op: "stop" });
  await late.sendJson(port, { op: "hello" });
  await poll("new peer dropped", () => Promise.resolve(drops(fixture)), (d) => d.stopped === 1);
  assert.deepEqual(await known.json(port, { op: "again" }), { id: first.id });
  assert.equal(late.queued, 0);
});

Deno.test("broker.ready udp:// bson reply is the document itself on the wire", async () => {
  await withStage(async (fixture) => {
    await using client = new UdpClient();
    await client.send(fixture.port("?bson"), BSON.serialize({ op: "echo" }));
    const { bytes } = await client.next();
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(0, true), bytes.length);
  });
});

Deno.test("broker.ready udp:// onAccept returning false forgets the peer; it is asked again", async () => {
  const script = REFERENCE + `
let asked = 0;
broker.ready("udp://127.0.0.1:0?json", (socket: Stage.Socket) => {
  asked++;
  if (asked === 1) return false;
  return (socket: Stage.Socket) => socket.commit({ asked, id: socket.id });
});
`;
  await using fixture = await startFixture({ scripts: { "start.ts": script }, workers: 1 });
  const port = fixture.port();
  await using client = new UdpClient();
  await client.sendJson(port, { first: true });
  await poll(
    "refused peer forgotten",
    () => Promise.resolve(fixture.stage().broker.closedByReason.get("script") ?? 0),
    (closed) => closed === 1,
  );
  assert.equal(client.queued, 0);
  const reply = await client.json(port, { second: true });
  assert.equal(reply.asked, 2);
});
