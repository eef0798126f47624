/**
 * The WebSocket codec, WebSocketConn and the opening handshake, over an
 * in-memory stream (ManualClock for deadlines), plus interoperation with
 * Deno's own WebSocket client and server over real loopback sockets.
 */
import assert from "node:assert/strict";
import { BSON } from "bson";
import {
  applyMask,
  CloseCode,
  closePayload,
  encodeFrame,
  Opcode,
  parseClosePayload,
  parseFrameHeader,
  WebSocketProtocolError,
} from "../../core/net/_websocket_frames.ts";
import { FrameDecoder, FrameError } from "../../core/net/framing.ts";
import { parseListenAddress } from "../../core/net/listen_address.ts";
import { denoTransport, type StreamConn } from "../../core/net/transport.ts";
import { WebSocketConn, type WebSocketConnOptions } from "../../core/net/websocket_conn.ts";
import {
  acceptWebSocket,
  connectWebSocket,
  WebSocketHandshakeError,
} from "../../core/net/websocket_upgrade.ts";
import { systemClock } from "../../core/time/mod.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

/** A StreamConn fed by the test; what is written is kept. */
class MemoryConn implements StreamConn {
  readonly local = "127.0.0.1:8000";
  readonly remote = "127.0.0.1:50000";
  closed = false;
  written: Uint8Array[] = [];
  #chunks: (Uint8Array | null)[] = [];
  #waiter: (() => void) | undefined;

  feed(chunk: Uint8Array | null): void {
    this.#chunks.push(chunk);
    this.#wake();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0 && !this.closed) {
      await new Promise<void>((resolve) => this.#waiter = resolve);
    }
    if (this.closed) throw new Error("closed");
    const chunk = this.#chunks.shift()!;
    if (chunk === null) return null;
    const count = Math.min(buffer.length, chunk.length);
    buffer.set(chunk.subarray(0, count));
    if (count < chunk.length) this.#chunks.unshift(chunk.subarray(count));
    return count;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Error("closed"));
    this.written.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }

  close(): void {
    this.closed = true;
    this.#wake();
  }

  /** Everything written, as one buffer. */
  output(): Uint8Array {
    return concat(this.written);
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Unmasked or masked frames in `bytes`, decoded. */
function frames(bytes: Uint8Array): { opcode: number; fin: boolean; payload: Uint8Array }[] {
  const out = [];
  let offset = 0;
  while (offset < bytes.length) {
    const header = parseFrameHeader(bytes, offset, bytes.length);
    assert.ok(header !== undefined, `incomplete frame at ${offset}`);
    const start = offset + header.headerLength;
    const payload = bytes.slice(start, start + header.length);
    if (header.mask !== undefined) applyMask(payload, header.mask, 0);
    out.push({ opcode: header.opcode, fin: header.fin, payload });
    offset = start + header.length;
  }
  return out;
}

function clientFrame(opcode: number, payload: Uint8Array | string, fin = true): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  return encodeFrame(opcode, bytes, { fin, mask: MASK });
}

function wsConn(
  conn: MemoryConn,
  options: Partial<WebSocketConnOptions> = {},
): WebSocketConn {
  return new WebSocketConn(conn, {
    role: "server",
    maxIn: 1024,
    framing: "payload",
    text: true,
    deadlineMs: 0,
    clock: systemClock,
    ...options,
  });
}

/** Reads until `count` frames came out of `ws` (through the real FrameDecoder). */
async function readFrames(ws: WebSocketConn, count: number, maxIn = 1024): Promise<string[]> {
  const framer = new FrameDecoder(maxIn);
  const out: string[] = [];
  const buffer = new Uint8Array(7); // small on purpose: frames come out across reads
  while (out.length < count) {
    const n = await ws.read(buffer);
    assert.ok(n !== null, `stream ended after ${out.length} frames`);
    framer.push(buffer.subarray(0, n), (payload) => out.push(decoder.decode(payload)));
  }
  return out;
}

Deno.test("parseFrameHeader reads 7-, 16- and 64-bit lengths and the mask", () => {
  for (const [length, headerLength] of [[5, 6], [300, 8], [70_000, 14]] as const) {
    const frame = encodeFrame(Opcode.Binary, new Uint8Array(length), { mask: MASK });
    const header = parseFrameHeader(frame, 0, frame.length);
    assert.deepEqual(header, {
      fin: true,
      opcode: Opcode.Binary,
      mask: MASK,
      length,
      headerLength,
    });
    assert.equal(parseFrameHeader(frame, 0, headerLength - 1), undefined);
  }
  const unmasked = encodeFrame(Opcode.Text, encoder.encode("hi"), { fin: false });
  assert.deepEqual([...unmasked], [0x01, 2, 0x68, 0x69]);
});

Deno.test("applyMask unmasks a payload in pieces at any offset", () => {
  const text = encoder.encode("The quick brown fox");
  const masked = text.slice();
  applyMask(masked, MASK, 0);
  assert.notDeepEqual(masked, text);
  applyMask(masked.subarray(0, 3), MASK, 0);
  applyMask(masked.subarray(3, 10), MASK, 3);
  applyMask(masked.subarray(10), MASK, 10);
  assert.deepEqual(masked, text);
});

Deno.test("parseFrameHeader rejects reserved bits, unknown opcodes and bad control frames", () => {
  const cases: [number[], RegExp][] = [
    [[0xc1, 0x80], /reserved bits/],
    [[0x83, 0x80], /unknown opcode 0x3/],
    [[0x09, 0x80], /control frame .* is fragmented/],
    [[0x89, 0xfe, 0, 126], /126 payload bytes, over 125/],
  ];
  for (const [bytes, message] of cases) {
    const frame = new Uint8Array([...bytes, ...MASK]);
    assert.throws(
      () => parseFrameHeader(frame, 0, frame.length),
      (error) =>
        error instanceof WebSocketProtocolError && error.code === CloseCode.ProtocolError &&
        message.test(error.message),
    );
  }
});

Deno.test("parseClosePayload reads code and reason and rejects 1-byte and reserved codes", () => {
  assert.deepEqual(parseClosePayload(closePayload(4000, "bye")), { code: 4000, reason: "bye" });
  assert.deepEqual(parseClosePayload(new Uint8Array()), { code: 1005, reason: "" });
  assert.throws(() => parseClosePayload(new Uint8Array([3])), /1 byte/);
  assert.throws(() => parseClosePayload(closePayload(1005)), /invalid status code 1005/);
  assert.equal(closePayload(1000, "x".repeat(200)).length, 125);
});

Deno.test("WebSocketConn hands up each message as one frame, even one byte at a time", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  const bytes = concat([clientFrame(Opcode.Text, "hello"), clientFrame(Opcode.Binary, "wörld")]);
  for (const byte of bytes) conn.feed(new Uint8Array([byte]));
  assert.deepEqual(await readFrames(ws, 2), ["hello", "wörld"]);
  conn.feed(concat([clientFrame(Opcode.Text, ""), clientFrame(Opcode.Text, "x".repeat(300))]));
  assert.deepEqual(await readFrames(ws, 2), ["", "x".repeat(300)]);
  conn.feed(null);
  assert.equal(await ws.read(new Uint8Array(8)), null);
  ws.close();
  await ws.finished;
  assert.equal(conn.closed, true);
  assert.equal(conn.written.length, 0, "no close frame after the peer's end of stream");
});

Deno.test("WebSocketConn assembles fragments and answers a ping sent between them", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  conn.feed(concat([
    clientFrame(Opcode.Text, "frag", false),
    clientFrame(Opcode.Ping, "are you there"),
    clientFrame(Opcode.Continuation, "men", false),
    clientFrame(Opcode.Continuation, "ted"),
    clientFrame(Opcode.Pong, "unasked"),
    clientFrame(Opcode.Text, "next"),
  ]));
  assert.deepEqual(await readFrames(ws, 2), ["fragmented", "next"]);
  assert.deepEqual(frames(conn.output()).map((f) => [f.opcode, decoder.decode(f.payload)]), [
    [Opcode.Pong, "are you there"],
  ]);
  ws.close();
  conn.feed(clientFrame(Opcode.Close, closePayload(1000)));
  await ws.finished;
});

Deno.test("WebSocketConn with document framing hands a BSON message up as the frame itself", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn, { framing: "document", text: false });
  const document = new Uint8Array(BSON.serialize({ op: "echo", n: 7 }));
  conn.feed(clientFrame(Opcode.Binary, document));
  // And fragmented, split inside the document's own length prefix.
  conn.feed(clientFrame(Opcode.Binary, document.subarray(0, 2), false));
  conn.feed(clientFrame(Opcode.Continuation, document.subarray(2)));
  const framer = new FrameDecoder(1024);
  const seen: unknown[] = [];
  const buffer = new Uint8Array(64);
  while (seen.length < 2) {
    const n = await ws.read(buffer);
    assert.ok(n !== null);
    framer.push(buffer.subarray(0, n), (payload) => {
      const frame = concat([new Uint8Array(4), payload]);
      new DataView(frame.buffer).setInt32(0, frame.length, true);
      seen.push(BSON.deserialize(frame));
    });
  }
  assert.deepEqual(seen, [{ op: "echo", n: 7 }, { op: "echo", n: 7 }]);
  // Writes: a BSON frame is sent as it stands, as a binary message.
  await ws.write(document);
  assert.deepEqual(frames(conn.output()), [
    { opcode: Opcode.Binary, fin: true, payload: document },
  ]);
  conn.feed(null);
  ws.close();
  await ws.finished;
});

Deno.test("WebSocketConn writes each frame as one message and holds a split frame", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  const frame = (text: string) => {
    const payload = encoder.encode(text);
    const out = new Uint8Array(payload.length + 4);
    new DataView(out.buffer).setInt32(0, out.length, true);
    out.set(payload, 4);
    return out;
  };
  const big = "y".repeat(70_000);
  const bytes = concat([frame("one"), frame("two"), frame(big), frame("split")]);
  assert.equal(await ws.write(bytes.subarray(0, bytes.length - 3)), bytes.length - 3);
  assert.equal(frames(conn.output()).length, 3);
  await ws.write(bytes.subarray(bytes.length - 3));
  const sent = frames(conn.output());
  assert.deepEqual(sent.map((f) => f.opcode), [1, 1, 1, 1]);
  assert.deepEqual(sent.map((f) => decoder.decode(f.payload)), ["one", "two", big, "split"]);
  conn.feed(null);
  ws.close();
  await ws.finished;
});

Deno.test("WebSocketConn rejects an unmasked client frame and closes with 1002", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  conn.feed(encodeFrame(Opcode.Text, encoder.encode("naked")));
  await assert.rejects(ws.read(new Uint8Array(64)), /client frame is not masked/);
  assert.equal(ws.closeCode, CloseCode.ProtocolError);
  ws.close();
  conn.feed(null); // the peer goes away after reading our close frame
  await ws.finished;
  const [close] = frames(conn.output());
  assert.equal(close?.opcode, Opcode.Close);
  assert.equal(parseClosePayload(close!.payload).code, 1002);
});

Deno.test("WebSocketConn declares an oversized message so the framer refuses it; close 1009", async () => {
  for (const fragmented of [false, true]) {
    const conn = new MemoryConn();
    const ws = wsConn(conn, { maxIn: 64 });
    const payload = "z".repeat(61); // 61 + 4 > 64
    conn.feed(
      fragmented
        ? concat([
          clientFrame(Opcode.Text, payload.slice(0, 30), false),
          clientFrame(Opcode.Continuation, payload.slice(30)),
        ])
        : clientFrame(Opcode.Text, payload),
    );
    const buffer = new Uint8Array(16);
    const n = await ws.read(buffer);
    assert.ok(n !== null && n >= 4);
    assert.throws(
      () => new FrameDecoder(64).push(buffer.subarray(0, n), () => {}),
      (error) =>
        error instanceof FrameError && error.code === "frame_too_large" &&
        error.declaredLength === 65,
    );
    assert.equal(ws.closeCode, CloseCode.TooBig);
    ws.close();
    conn.feed(clientFrame(Opcode.Close, closePayload(1009)));
    await ws.finished;
    const [close] = frames(conn.output());
    assert.equal(close?.opcode, Opcode.Close);
    assert.equal(parseClosePayload(close!.payload).code, 1009, `fragmented: ${fragmented}`);
  }
});

Deno.test("WebSocketConn echoes the peer's close frame and ends the stream", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  conn.feed(
    concat([
      clientFrame(Opcode.Text, "last"),
      clientFrame(Opcode.Close, closePayload(4001, "bye")),
    ]),
  );
  assert.deepEqual(await readFrames(ws, 1), ["last"]);
  assert.equal(await ws.read(new Uint8Array(8)), null);
  const [close] = frames(conn.output());
  assert.equal(close?.opcode, Opcode.Close);
  assert.equal(parseClosePayload(close!.payload).code, 4001);
  assert.equal(await ws.write(new Uint8Array([8, 0, 0, 0, 1, 2, 3, 4])), 8);
  assert.equal(conn.written.length, 1, "nothing is sent after a close frame");
  ws.close();
  await ws.finished;
  assert.equal(conn.closed, true);
});

Deno.test("WebSocketConn close() sends 1000, waits for the peer's close, and gives up after 2 s", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn);
  const reading = ws.read(new Uint8Array(8)); // a read in flight, as Connection keeps one
  ws.close();
  await new Promise((resolve) => setTimeout(resolve, 0));
  const [close] = frames(conn.output());
  assert.equal(parseClosePayload(close!.payload).code, 1000);
  assert.equal(conn.closed, false, "lingers for the peer's close frame");
  conn.feed(
    concat([clientFrame(Opcode.Text, "late"), clientFrame(Opcode.Close, closePayload(1000))]),
  );
  assert.equal(await reading, null, "the read in flight ends");
  await ws.finished;
  assert.equal(conn.closed, true);

  const clock = new ManualClock();
  const silent = new MemoryConn();
  const idle = wsConn(silent, { clock });
  idle.close();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(silent.closed, false);
  clock.advance(2000);
  await idle.finished;
  assert.equal(silent.closed, true);
});

Deno.test("WebSocketConn closes when a frame header or fragmented message stalls past the deadline", async () => {
  for (const stall of ["header", "fragments"] as const) {
    const clock = new ManualClock();
    const conn = new MemoryConn();
    const ws = wsConn(conn, { clock, deadlineMs: 5000 });
    const frame = clientFrame(Opcode.Text, "partial", stall === "header");
    conn.feed(stall === "header" ? frame.subarray(0, 1) : frame);
    const reading = ws.read(new Uint8Array(64));
    await new Promise((resolve) => setTimeout(resolve, 0));
    clock.advance(4999);
    assert.equal(conn.closed, false);
    clock.advance(1);
    await assert.rejects(
      reading,
      new RegExp(
        stall === "header"
          ? "frame header not complete within 5000 ms"
          : "fragmented message not complete",
      ),
    );
    ws.close();
    await ws.finished;
  }
});

Deno.test("WebSocketConn as a client masks what it sends and refuses masked server frames", async () => {
  const conn = new MemoryConn();
  const ws = wsConn(conn, { role: "client" });
  await ws.write(new Uint8Array([6, 0, 0, 0, 0x68, 0x69]));
  const header = parseFrameHeader(conn.output(), 0, conn.output().length);
  assert.ok(header?.mask !== undefined, "client frames are masked");
  assert.deepEqual(frames(conn.output()).map((f) => decoder.decode(f.payload)), ["hi"]);
  conn.feed(encodeFrame(Opcode.Text, encoder.encode("ok")));
  assert.deepEqual(await readFrames(ws, 1), ["ok"]);
  conn.feed(clientFrame(Opcode.Text, "masked"));
  await assert.rejects(ws.read(new Uint8Array(8)), /server frame is masked/);
  ws.close();
  conn.feed(null);
  await ws.finished;
});

const REQUEST = "GET /game?token=1 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n" +
  "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";

Deno.test("acceptWebSocket answers the RFC 6455 sample key and keeps pipelined frames", async () => {
  const conn = new MemoryConn();
  const request = encoder.encode(REQUEST);
  conn.feed(request.subarray(0, 40));
  conn.feed(concat([request.subarray(40), clientFrame(Opcode.Text, "first")]));
  const address = parseListenAddress("ws://127.0.0.1:0/game?json");
  const ws = await acceptWebSocket(conn, { address, deadlineMs: 1000, clock: systemClock });
  const response = decoder.decode(conn.output());
  assert.match(response, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(response, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  assert.deepEqual(await readFrames(ws, 1), ["first"]);
  conn.feed(null);
  ws.close();
  await ws.finished;
});

Deno.test("acceptWebSocket refuses bad requests with a status and a reason", async () => {
  const cases: [string, number, string, RegExp][] = [
    [
      REQUEST.replace("/game?token=1", "/other"),
      404,
      "not_found",
      /no WebSocket endpoint at "\/other"/,
    ],
    [REQUEST.replace("GET", "POST"), 405, "bad_request", /method POST is not GET/],
    [REQUEST.replace("Upgrade: websocket\r\n", ""), 400, "bad_request", /Upgrade: websocket/],
    [REQUEST.replace("Version: 13", "Version: 8"), 426, "bad_request", /expected 13/],
    [REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), 400, "bad_request", /Sec-WebSocket-Key/],
    [REQUEST.replace("Host: example\r\n", ""), 400, "bad_request", /missing Host/],
    [
      REQUEST.replace("\r\n\r\n", "\r\nX: " + "a".repeat(9000) + "\r\n\r\n"),
      431,
      "bad_request",
      /over 8192 bytes/,
    ],
  ];
  const address = parseListenAddress("ws://127.0.0.1:0/game");
  for (const [request, status, failure, reason] of cases) {
    const conn = new MemoryConn();
    conn.feed(encoder.encode(request));
    await assert.rejects(
      acceptWebSocket(conn, { address, deadlineMs: 1000, clock: systemClock }),
      (error) =>
        error instanceof WebSocketHandshakeError && error.status === status &&
        error.failure === failure && reason.test(error.message),
    );
    const response = decoder.decode(conn.output());
    assert.match(response, new RegExp(`^HTTP/1\\.1 ${status} `));
    assert.match(response.slice(response.indexOf("\r\n\r\n")), reason);
    assert.equal(conn.closed, true);
  }
});

Deno.test("acceptWebSocket drops a client whose request stalls past the deadline", async () => {
  const clock = new ManualClock();
  const conn = new MemoryConn();
  conn.feed(encoder.encode("GET /game HTTP/1.1\r\nHost: x\r\n"));
  const address = parseListenAddress("ws://127.0.0.1:0/game");
  const handshake = acceptWebSocket(conn, { address, deadlineMs: 3000, clock });
  await new Promise((resolve) => setTimeout(resolve, 0));
  clock.advance(3000);
  await assert.rejects(
    handshake,
    (error) => error instanceof WebSocketHandshakeError && error.failure === "timeout",
  );
  assert.equal(conn.closed, true);
  assert.equal(conn.written.length, 0);
});

Deno.test("acceptWebSocket serves Deno's WebSocket client over a real socket", async () => {
  const listener = denoTransport.listen("127.0.0.1", 0);
  const address = parseListenAddress(`ws://127.0.0.1:${listener.port}/chat?json&packet=256k`);
  const serving = (async () => {
    const tcp = await listener.accept();
    assert.ok(tcp !== undefined);
    const ws = await acceptWebSocket(tcp, { address, deadlineMs: 5000, clock: systemClock });
    // Echo each frame back (a frame written is a message sent).
    const framer = new FrameDecoder(address.maxIn);
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await ws.read(buffer);
      if (n === null) break;
      const out: Uint8Array[] = [];
      framer.push(buffer.subarray(0, n), (payload) => {
        const frame = new Uint8Array(payload.length + 4);
        new DataView(frame.buffer).setInt32(0, frame.length, true);
        frame.set(payload, 4);
        out.push(frame);
      });
      if (out.length > 0) await ws.write(concat(out));
    }
    ws.close();
    await ws.finished;
  })();
  const client = new WebSocket(`ws://127.0.0.1:${listener.port}/chat`);
  const received: string[] = [];
  const closed = new Promise<CloseEvent>((resolve) => client.onclose = resolve);
  const gotAll = new Promise<void>((resolve) => {
    client.onmessage = (event) => {
      received.push(event.data as string);
      if (received.length === 3) resolve();
    };
  });
  await new Promise((resolve, reject) => {
    client.onopen = resolve;
    client.onerror = reject;
  });
  const big = "b".repeat(100_000);
  client.send("hello");
  client.send(JSON.stringify({ n: 1 }));
  client.send(big);
  await gotAll;
  assert.deepEqual(received, ["hello", '{"n":1}', big]);
  client.close(1000);
  const event = await closed;
  assert.equal(event.code, 1000);
  await serving;
  listener.close();
});

Deno.test("connectWebSocket talks to Deno's WebSocket server (masked frames, 101 checked)", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname !== "/echo") return new Response("nope", { status: 404 });
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  });
  const port = server.addr.port;
  try {
    const tcp = await denoTransport.connect("127.0.0.1", port);
    const address = parseListenAddress(`ws://127.0.0.1:${port}/echo?json`);
    const ws = await connectWebSocket(tcp, { address, deadlineMs: 5000, clock: systemClock });
    await ws.write(new Uint8Array([9, 0, 0, 0, ...encoder.encode('"hey"')]));
    assert.deepEqual(await readFrames(ws, 1), ['"hey"']);
    ws.close();
    await ws.finished;

    const refused = await denoTransport.connect("127.0.0.1", port);
    await assert.rejects(
      connectWebSocket(refused, {
        address: parseListenAddress(`ws://127.0.0.1:${port}/elsewhere`),
        deadlineMs: 5000,
        clock: systemClock,
      }),
      (error) =>
        error instanceof WebSocketHandshakeError && error.failure === "refused" &&
        error.status === 404 && /refused the upgrade: status 404/.test(error.message),
    );
  } finally {
    await server.shutdown();
  }
});
