/**
 * StageClient.post (queue a frame without a promise) and receivedAt (when the bytes
 * of the message being delivered were read): the load generators' hot path.
 */
import assert from "node:assert/strict";
import {
  ClientClosedError,
  type ClientConnection,
  ConnectionLostError,
  FrameError,
  SendQueueFullError,
  StageClient,
} from "../../core/client/mod.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";
import { TestServer } from "./_servers.ts";

/** A connection whose writes never complete and whose peer closes on demand. */
class StalledConnection implements ClientConnection {
  #closed = false;
  #endRead: ((n: number | null) => void) | undefined;
  #failWrite: ((error: Error) => void) | undefined;
  writes = 0;

  read(): Promise<number | null> {
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#endRead = resolve);
  }

  write(): Promise<number> {
    this.writes++;
    if (this.#closed) return Promise.reject(new Error("closed"));
    return new Promise((_, reject) => this.#failWrite = reject);
  }

  /** The peer closes: the pending read ends. */
  peerCloses(): void {
    this.#endRead?.(null);
  }

  close(): void {
    this.#closed = true;
    this.#endRead?.(null);
    this.#failWrite?.(new Error("closed"));
  }
}

function stalled(): { conn: StalledConnection; connect: () => Promise<StalledConnection> } {
  const conn = new StalledConnection();
  return { conn, connect: () => Promise.resolve(conn) };
}

Deno.test("StageClient.post pipelines frames in order, encoding each before it returns", async () => {
  await using server = new TestServer("echo");
  await using client = await StageClient.connect({ port: server.port, codec: "raw" });
  const payload = new Uint8Array(3);
  for (let i = 0; i < 200; i++) {
    payload.set([i, i >> 8, 7]);
    assert.equal(client.post(payload), undefined);
  }
  for (let i = 0; i < 200; i++) {
    assert.deepEqual([...await client.next<Uint8Array>(5000)], [i & 0xff, i >> 8, 7]);
  }
  assert.equal(client.queuedFrames, 0);
});

Deno.test("StageClient.post throws at once what send would reject with", async () => {
  const { conn, connect } = stalled();
  const client = await StageClient.connect({
    port: 1,
    codec: "raw",
    maxFrame: 16,
    maxQueuedFrames: 2,
    transport: { connect },
  });
  assert.throws(() => client.post("text"), TypeError);
  assert.throws(() => client.post(new Uint8Array(13)), (error: unknown) => {
    assert.ok(error instanceof FrameError);
    assert.equal(error.code, "too_large");
    return true;
  });
  client.post(new Uint8Array(1));
  client.post(new Uint8Array(1));
  assert.throws(() => client.post(new Uint8Array(1)), SendQueueFullError);
  assert.equal(client.queuedFrames, 2);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(conn.writes, 1, "the writer took both frames in one write, which never ends");
  await client.close();
  assert.equal(client.queuedFrames, 0);
  assert.throws(() => client.post(new Uint8Array(1)), ClientClosedError);
});

Deno.test("StageClient.post drops frames still queued at a loss without reconnect, then throws", async () => {
  const { conn, connect } = stalled();
  await using client = await StageClient.connect({ port: 1, codec: "raw", transport: { connect } });
  const lost = new Promise<ConnectionLostError>((resolve) => client.on("disconnect", resolve));
  client.post(new Uint8Array(1));
  client.post(new Uint8Array(1));
  conn.peerCloses();
  assert.ok((await lost) instanceof ConnectionLostError);
  assert.equal(client.state, "lost");
  assert.equal(client.queuedFrames, 0, "dropped, with no rejection left unhandled");
  assert.throws(() => client.post(new Uint8Array(1)), ConnectionLostError);
});

Deno.test("StageClient.receivedAt is the clock time of the read that delivered the message", async () => {
  await using server = new TestServer("echo");
  const clock = new ManualClock();
  await using client = await StageClient.connect({ port: server.port, codec: "json", clock });
  assert.ok(Number.isNaN(client.receivedAt), "nothing read yet");
  const seen: [unknown, number][] = [];
  let arrived: (() => void) | undefined;
  client.on("message", (value) => {
    seen.push([value, client.receivedAt]);
    arrived?.();
  });
  for (const at of [5, 12]) {
    clock.advance(at - clock.now());
    const delivered = new Promise<void>((resolve) => arrived = resolve);
    client.post({ at });
    await delivered;
  }
  assert.deepEqual(seen, [[{ at: 5 }, 5], [{ at: 12 }, 12]]);
});
