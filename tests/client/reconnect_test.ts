/**
 * StageClient after a connection loss: pending requests reject, queued sends
 * survive and flush after reconnect, backoff timing under an injected clock.
 */
import assert from "node:assert/strict";
import {
  type ClientConnection,
  type ClientTransport,
  ConnectionLostError,
  StageClient,
} from "../../core/client/mod.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";
import { TestServer } from "./_servers.ts";

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

Deno.test("StageClient reconnects after the server drops it: sent requests reject, queued sends flush", async () => {
  const server = new TestServer("echo");
  const port = server.port;
  await using client = await StageClient.connect({
    port,
    codec: "json",
    reconnect: { initialMs: 5, maxMs: 20 },
  });
  assert.deepEqual(await client.request({ op: "ping" }, { timeout: 5000 }), { op: "ping", id: 1 });

  // Stop the server entirely: the client loses the connection and cannot get back yet.
  const lost = deferred<ConnectionLostError>();
  client.on("disconnect", lost.resolve);
  server.mode = "hold";
  const request = client.request({ op: "never" }, { timeout: 5000 });
  while (client.queuedFrames > 0) await new Promise((r) => setTimeout(r, 1));
  await server.close();
  const error = await request.catch((e) => e);
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.ok((await lost.promise) instanceof ConnectionLostError);
  assert.equal(client.state, "reconnecting");

  // Sent while disconnected: kept in the queue.
  const queued = [client.send({ n: 1 }), client.send({ n: 2 })];
  const back = deferred<number>();
  client.on("reconnect", back.resolve);
  await using again = new TestServer("echo", port);
  assert.ok((await back.promise) >= 1);
  await Promise.all(queued);
  assert.deepEqual(await client.next(5000), { n: 1 });
  assert.deepEqual(await client.next(5000), { n: 2 });
  assert.equal(client.state, "open");
  assert.equal(again.accepted, 1);
});

Deno.test("StageClient without reconnect rejects next() at the loss and sends after it", async () => {
  await using server = new TestServer("hold");
  await using client = await StageClient.connect({ port: server.port, codec: "json" });
  const lost = deferred<void>();
  client.on("disconnect", () => lost.resolve());
  const waiting = assert.rejects(client.next(), ConnectionLostError);
  server.dropConnections();
  await lost.promise;
  await waiting;
  assert.equal(client.state, "lost");
  await assert.rejects(client.send({ n: 1 }), ConnectionLostError);
});

/** A transport whose connections fail or succeed on command, and record when they were tried. */
class FakeTransport implements ClientTransport {
  attempts: number[] = [];
  failing = false;
  conns: FakeConnection[] = [];
  readonly #clock: ManualClock;

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  connect(): Promise<ClientConnection> {
    this.attempts.push(this.#clock.now());
    if (this.failing) return Promise.reject(new Error("connection refused"));
    const conn = new FakeConnection();
    this.conns.push(conn);
    return Promise.resolve(conn);
  }
}

class FakeConnection implements ClientConnection {
  written: Uint8Array[] = [];
  /** Writes never complete (a peer that does not read) until the connection closes. */
  stalled = false;
  #end = deferred<null>();

  read(): Promise<number | null> {
    return this.#end.promise;
  }

  async write(bytes: Uint8Array): Promise<number> {
    if (this.stalled) {
      await this.#end.promise;
      throw new Error("connection closed");
    }
    this.written.push(bytes.slice());
    return bytes.length;
  }

  close(): void {
    this.#end.resolve(null);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

Deno.test("StageClient waits a jittered, doubling, capped backoff between reconnect attempts and gives up", async () => {
  const clock = new ManualClock();
  const transport = new FakeTransport(clock);
  await using client = await StageClient.connect({
    port: 1,
    transport,
    clock,
    random: () => 0.5,
    reconnect: { initialMs: 100, maxMs: 400, attempts: 4 },
  });
  transport.failing = true;
  transport.conns[0]!.close(); // the server side went away
  await settle();
  assert.equal(client.state, "reconnecting");
  // Delays are cap/2 + 0.5 * cap/2 with caps 100, 200, 400, 400.
  for (const delay of [75, 150, 300, 300]) {
    const tried = transport.attempts.length;
    clock.advance(delay - 1);
    await settle();
    assert.equal(transport.attempts.length, tried, `no attempt before ${delay} ms`);
    clock.advance(1);
    await settle();
    assert.equal(transport.attempts.length, tried + 1, `an attempt at ${delay} ms`);
  }
  assert.deepEqual(transport.attempts, [0, 75, 225, 525, 825]);
  assert.equal(client.state, "lost");
  await assert.rejects(client.next(), /gave up after 4 reconnect attempts/);
  assert.equal(clock.pending, 0);
});

Deno.test("StageClient resets the backoff after a successful reconnect and resends unfinished frames", async () => {
  const clock = new ManualClock();
  const transport = new FakeTransport(clock);
  await using client = await StageClient.connect({
    port: 1,
    codec: "json",
    transport,
    clock,
    random: () => 0,
    reconnect: { initialMs: 100, maxMs: 400 },
  });
  transport.conns[0]!.close();
  await settle();
  const sent = client.send({ after: "loss" });
  clock.advance(50);
  await settle();
  assert.equal(client.state, "open");
  await sent;
  const frame = transport.conns[1]!.written[0]!;
  assert.deepEqual(JSON.parse(new TextDecoder().decode(frame.subarray(4))), { after: "loss" });
  transport.conns[1]!.close();
  await settle();
  clock.advance(50); // back to the first delay, not the second
  await settle();
  assert.equal(transport.conns.length, 3);
  assert.deepEqual(transport.attempts, [0, 50, 100]);
});

Deno.test("StageClient without reconnect rejects the sends still queued at the loss", async () => {
  const clock = new ManualClock();
  const transport = new FakeTransport(clock);
  await using client = await StageClient.connect({ port: 1, codec: "json", transport, clock });
  transport.conns[0]!.stalled = true;
  const sends = [client.send({ n: 1 }), client.send({ n: 2 })].map((send) =>
    assert.rejects(send, ConnectionLostError)
  );
  await settle();
  assert.equal(client.queuedFrames, 2);
  transport.conns[0]!.close();
  await Promise.all(sends);
  assert.equal(client.queuedFrames, 0);
  assert.equal(client.state, "lost");
});
