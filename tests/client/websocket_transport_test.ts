/**
 * The client SDK's WebSocket transport: against ws:// listeners of a real Stage
 * runtime (through Deno's standard WebSocket), and against a fake WebSocket for
 * message splitting and write backpressure.
 */
import assert from "node:assert/strict";
import {
  ConnectionLostError,
  StageClient,
  type WebSocketLike,
  webSocketTransport,
} from "../../core/client/mod.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const START = REFERENCE + `
const echo = () => (socket: Stage.Socket, data: any) => socket.commit(data);
broker.ready("ws://127.0.0.1:0/json?json&packet=1k,64k", echo);
broker.ready("ws://127.0.0.1:0/bson?bson", echo);
broker.ready("ws://127.0.0.1:0/raw?raw", echo);
`;

Deno.test("webSocketTransport carries StageClient json, bson and raw frames to ws:// listeners", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": START } });
  for (const codec of ["json", "bson"] as const) {
    await using client = await StageClient.connect({
      port: fixture.port(`/${codec}`),
      codec,
      transport: webSocketTransport({ path: `/${codec}`, codec }),
    });
    const values = Array.from({ length: 100 }, (_, i) => ({ i, text: "é".repeat(i) }));
    await Promise.all(values.map((value) => client.send(value)));
    for (const value of values) assert.deepEqual(await client.next(5000), value);
    const reply = await client.request({ op: "ask" }, { timeout: 5000 });
    assert.deepEqual({ ...(reply as object), id: undefined }, { op: "ask", id: undefined });
  }
  await using raw = await StageClient.connect({
    port: fixture.port("/raw"),
    codec: "raw",
    transport: webSocketTransport({ path: "/raw", codec: "raw" }),
  });
  await raw.send(new Uint8Array([0, 1, 2, 255]));
  assert.deepEqual(await raw.next(5000), new Uint8Array([0, 1, 2, 255]));
});

Deno.test("webSocketTransport reports the server's 1009 close as the cause of the loss", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": START } });
  await using client = await StageClient.connect({
    port: fixture.port("/json"),
    codec: "json",
    transport: webSocketTransport({ path: "/json", codec: "json" }),
  });
  await client.send({ pad: "x".repeat(5000) }); // IN is 1k
  await assert.rejects(
    client.next(5000),
    (error) => error instanceof ConnectionLostError && /closed with code 1009/.test(error.message),
  );
});

Deno.test("webSocketTransport rejects a connect that fails, naming the URL", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // nothing listens there now
  await assert.rejects(
    webSocketTransport({ path: "/game" }).connect("127.0.0.1", port),
    new RegExp(`Cannot connect to ws://127\\.0\\.0\\.1:${port}/game`),
  );
  assert.throws(() => webSocketTransport({ path: "game" }), /path "game" must start with "\/"/);
});

/** A WebSocket stand-in: opens at once, records sends, lets the test drive the rest. */
class FakeWebSocket implements WebSocketLike {
  static last: FakeWebSocket | undefined;
  readonly url: string;
  binaryType = "blob";
  bufferedAmount = 0;
  readyState = 0;
  sent: (string | Uint8Array)[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;

  constructor(url: string) {
    this.url = url;
    FakeWebSocket.last = this;
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
    });
  }

  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }

  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 4);
  new DataView(out.buffer).setInt32(0, out.length, true);
  out.set(payload, 4);
  return out;
}

Deno.test("webSocketTransport sends one message per frame, holds split frames, waits on bufferedAmount", async () => {
  const transport = webSocketTransport({
    path: "/g",
    codec: "json",
    maxBufferedBytes: 10,
    WebSocket: FakeWebSocket,
  });
  const conn = await transport.connect("::1", 9000);
  const socket = FakeWebSocket.last!;
  assert.equal(socket.url, "ws://[::1]:9000/g");
  assert.equal(socket.binaryType, "arraybuffer");
  const encoder = new TextEncoder();
  const bytes = new Uint8Array([
    ...frame(encoder.encode('"a"')),
    ...frame(encoder.encode('{"b":2}')),
    ...frame(encoder.encode('"split"')),
  ]);
  assert.equal(await conn.write(bytes.subarray(0, bytes.length - 2)), bytes.length - 2);
  assert.deepEqual(socket.sent, ['"a"', '{"b":2}']);
  socket.bufferedAmount = 100; // over the bound: the next write waits until it drains
  let done = false;
  const writing = conn.write(bytes.subarray(bytes.length - 2)).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(socket.sent, ['"a"', '{"b":2}', '"split"']);
  assert.equal(done, false, "write waits while bufferedAmount is over maxBufferedBytes");
  socket.bufferedAmount = 0;
  await writing;

  // Received messages come out as frames; a read takes as many as fit.
  socket.onmessage?.({ data: "[1]" });
  socket.onmessage?.({ data: new Uint8Array([0x22, 0x78, 0x22]).buffer });
  const buffer = new Uint8Array(64);
  const n = await conn.read(buffer);
  assert.deepEqual(
    buffer.subarray(0, n ?? 0),
    new Uint8Array([...frame(encoder.encode("[1]")), ...frame(encoder.encode('"x"'))]),
  );
  socket.onclose?.({ code: 1000, reason: "" });
  assert.equal(await conn.read(buffer), null, "a normal close ends the stream");
  conn.close();
});

Deno.test("webSocketTransport with bson sends and takes whole documents as binary messages", async () => {
  const transport = webSocketTransport({ codec: "bson", WebSocket: FakeWebSocket });
  const conn = await transport.connect("127.0.0.1", 1);
  const socket = FakeWebSocket.last!;
  assert.equal(socket.url, "ws://127.0.0.1:1/");
  const document = new Uint8Array([5, 0, 0, 0, 0]); // the empty BSON document
  await conn.write(document);
  assert.deepEqual(socket.sent, [document]);
  socket.onmessage?.({ data: document.slice().buffer });
  const buffer = new Uint8Array(16);
  assert.equal(await conn.read(buffer), 5);
  assert.deepEqual(buffer.subarray(0, 5), document);
  socket.onmessage?.({ data: new Uint8Array([1, 2]).buffer });
  await assert.rejects(conn.read(buffer), /2-byte message, too short for a document/);
  assert.equal(socket.closedWith, 1002);
  conn.close();
});
