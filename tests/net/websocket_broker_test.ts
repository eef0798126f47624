/**
 * `broker.ready("ws://…")` and `broker.join("ws://…")` against a real Stage
 * runtime (real workers, real loopback sockets), with Deno's standard
 * `WebSocket` as the client and raw TCP for handshakes and floods.
 */
import assert from "node:assert/strict";
import { BSON } from "bson";
import { encodeFrame, Opcode } from "../../core/net/_websocket_frames.ts";
import { join } from "node:path";
import { loadConfig } from "../../core/config/mod.ts";
import { type Fixture, REFERENCE, repoRoot, startFixture } from "../_helpers/stage_fixture.ts";
import { poll } from "../_helpers/poll.ts";

const START = REFERENCE + `
const receive = (socket: Stage.Socket, data: any) => {
  switch (data.op) {
    case "set": socket.user = data.value; return socket.commit({ ok: true });
    case "get": return socket.commit({ user: socket.user ?? null });
    case "where": return socket.commit({ remote: socket.remote, local: socket.local });
    case "expire": socket.expire = data.ms; return socket.commit({ ok: true });
    case "bye": socket.commit({ bye: true }); return socket.close();
    case "many": for (let i = 0; i < data.n; i++) socket.commit({ i }); return;
    case "quiet": return;
    case "join": return (async () => {
      const url = "ws://127.0.0.1:" + data.port + "/echo?json";
      const joined = await broker.join(url, () => (peer: Stage.Socket, reply: unknown) => {
        socket.commit({ joined: reply });
        peer.close();
      });
      joined.commit({ hello: "over ws" });
    })();
    default: return socket.commit(data);
  }
};
broker.ready("ws://127.0.0.1:0/game?json&packet=1k", () => receive);
broker.ready("ws://127.0.0.1:0/doc?bson", () => receive);
broker.ready("ws://127.0.0.1:0?raw", () => (socket: Stage.Socket, data: Uint8Array) => {
  socket.commit(data.slice().reverse());
});
`;

/** A WebSocket client that queues what it receives. */
class Client {
  readonly socket: WebSocket;
  readonly closed: Promise<CloseEvent>;
  #messages: unknown[] = [];
  #waiters: (() => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      this.#messages.push(event.data);
      for (const waiter of this.#waiters.splice(0)) waiter();
    };
  }

  static open(url: string): Promise<Client> {
    const socket = new WebSocket(url);
    return new Promise((resolve, reject) => {
      socket.onopen = () => resolve(new Client(socket));
      socket.onerror = (event) =>
        reject(new Error(`cannot open ${url}: ${(event as ErrorEvent).message}`));
    });
  }

  async next(ms = 5000): Promise<unknown> {
    const deadline = Date.now() + ms;
    while (this.#messages.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#messages.shift();
  }

  async json(value: unknown): Promise<unknown> {
    this.socket.send(JSON.stringify(value));
    return JSON.parse(await this.next() as string);
  }

  async close(): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close(1000);
    await this.closed;
  }
}

async function withStage(
  run: (fixture: Fixture) => Promise<void>,
  config?: Record<string, unknown>,
): Promise<void> {
  await using fixture = await startFixture({
    scripts: { "start.ts": START },
    ...(config === undefined ? {} : { config }),
  });
  await run(fixture);
}

function wsUrl(fixture: Fixture, match: string, path: string): string {
  return `ws://127.0.0.1:${fixture.port(match)}${path}`;
}

/** Sends raw bytes over TCP and returns everything the server sends until it closes. */
async function rawExchange(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((chunk) => [...chunk])));
  } finally {
    conn.close();
  }
}

const UPGRADE = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

Deno.test("broker.ready ws:// echoes JSON text messages and keeps user fields and addresses", async () => {
  await withStage(async (fixture) => {
    const client = await Client.open(wsUrl(fixture, "/game", "/game"));
    try {
      assert.deepEqual(await client.json({ op: "echo", text: "héllo ✓" }), {
        op: "echo",
        text: "héllo ✓",
      });
      assert.deepEqual(await client.json({ op: "set", value: { level: 3 } }), { ok: true });
      assert.deepEqual(await client.json({ op: "get" }), { user: { level: 3 } });
      const where = await client.json({ op: "where" }) as { remote: string; local: string };
      assert.match(where.remote, /^127\.0\.0\.1:\d+$/);
      assert.equal(where.local, `127.0.0.1:${fixture.port("/game")}`);
      // Several commits in one turn arrive as separate text messages, in order.
      client.socket.send(JSON.stringify({ op: "many", n: 50 }));
      const many = [];
      for (let i = 0; i < 50; i++) many.push(JSON.parse(await client.next() as string));
      assert.deepEqual(many, Array.from({ length: 50 }, (_, i) => ({ i })));
      const [socket] = fixture.stage().broker.sockets();
      assert.ok(socket !== undefined && socket.url.startsWith("ws://"));
    } finally {
      await client.close();
    }
  });
});

Deno.test("broker.ready ws:// with bson takes and sends binary BSON documents; raw reverses bytes", async () => {
  await withStage(async (fixture) => {
    const doc = await Client.open(wsUrl(fixture, "/doc", "/doc"));
    const raw = await Client.open(wsUrl(fixture, "?raw", "/"));
    try {
      doc.socket.send(BSON.serialize({ op: "echo", n: 42, list: [1, "two"] }));
      const reply = await doc.next();
      assert.ok(reply instanceof ArrayBuffer, "bson replies are binary messages");
      assert.deepEqual(BSON.deserialize(new Uint8Array(reply)), {
        op: "echo",
        n: 42,
        list: [1, "two"],
      });
      raw.socket.send(new Uint8Array([1, 2, 3, 4, 5]));
      assert.deepEqual(
        new Uint8Array(await raw.next() as ArrayBuffer),
        new Uint8Array([5, 4, 3, 2, 1]),
      );
    } finally {
      await doc.close();
      await raw.close();
    }
  });
});

Deno.test("socket.close() flushes, then closes the WebSocket with 1000; expire closes an idle one", async () => {
  await withStage(async (fixture) => {
    const url = wsUrl(fixture, "/game", "/game");
    const leaving = await Client.open(url);
    leaving.socket.send(JSON.stringify({ op: "bye" }));
    assert.deepEqual(JSON.parse(await leaving.next() as string), { bye: true });
    assert.equal((await leaving.closed).code, 1000);

    const idle = await Client.open(url);
    const started = Date.now();
    assert.deepEqual(await idle.json({ op: "expire", ms: 300 }), { ok: true });
    const event = await idle.closed;
    const waited = Date.now() - started;
    assert.equal(event.code, 1000);
    assert.ok(waited >= 250 && waited < 5000, `expired after ${waited} ms`);
    const broker = fixture.stage().broker;
    await poll(
      "closes counted",
      () => Promise.resolve(Object.fromEntries(broker.closedByReason)),
      (c) => c.script === 1 && c.expired === 1,
    );
    await poll(
      "sockets released",
      () => Promise.resolve(broker.registrySizes()),
      (s) => s.connections === 0 && s.inbound === 0 && s.perIp === 0,
    );
  });
});

Deno.test("a message over IN closes the WebSocket with 1009 and counts as frame_too_large", async () => {
  await withStage(async (fixture) => {
    const client = await Client.open(wsUrl(fixture, "/game", "/game"));
    const other = await Client.open(wsUrl(fixture, "/game", "/game"));
    try {
      client.socket.send(JSON.stringify({ op: "echo", pad: "x".repeat(2000) })); // IN is 1k
      const event = await client.closed;
      assert.equal(event.code, 1009);
      assert.match(event.reason, /exceeds the limit of 1024/);
      const broker = fixture.stage().broker;
      assert.equal(broker.closedByReason.get("frame_too_large"), 1);
      // Only that socket: the other one is still served.
      assert.deepEqual(await other.json({ op: "echo", still: true }), { op: "echo", still: true });
    } finally {
      await other.close();
    }
  });
});

Deno.test("a bad WebSocket handshake gets 400, a wrong path 404, and neither reaches the script", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("/game");
    const plain = await rawExchange(port, "GET /game HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert.match(plain, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(plain, /"Upgrade: websocket" header missing/);
    const wrong = await rawExchange(port, UPGRADE("/elsewhere"));
    assert.match(wrong, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(wrong, /no WebSocket endpoint at "\/elsewhere"/);
    const broker = fixture.stage().broker;
    assert.deepEqual(Object.fromEntries(broker.handshakeFailures), {
      bad_request: 1,
      not_found: 1,
    });
    assert.equal(broker.socketCount, 0);
    await poll(
      "quota released",
      () => Promise.resolve(broker.registrySizes()),
      (s) => s.perIp === 0,
    );
    // A good handshake on the same port still works.
    const client = await Client.open(wsUrl(fixture, "/game", "/game?token=abc"));
    assert.deepEqual(await client.json({ op: "echo" }), { op: "echo" });
    await client.close();
  });
});

Deno.test("broker.join ws:// connects out with a masked WebSocket client", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  });
  try {
    await withStage(async (fixture) => {
      const client = await Client.open(wsUrl(fixture, "/game", "/game"));
      try {
        assert.deepEqual(await client.json({ op: "join", port: server.addr.port }), {
          joined: { hello: "over ws" },
        });
      } finally {
        await client.close();
      }
    });
  } finally {
    await server.shutdown();
  }
});

/** Opens a WebSocket over raw TCP (to write floods of masked frames directly). */
async function rawWebSocket(port: number, path: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(UPGRADE(path)));
  const buffer = new Uint8Array(1024);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("closed during the handshake");
    head += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assert.match(head, /^HTTP\/1\.1 101 /);
  return conn;
}

Deno.test("a WebSocket client flooding messages is held at its pending bound; another is served", async () => {
  await withStage(async (fixture) => {
    const port = fixture.port("/game");
    const flooder = await rawWebSocket(port, "/game");
    const mask = new Uint8Array([1, 2, 3, 4]);
    const one = encodeFrame(
      Opcode.Text,
      new TextEncoder().encode(JSON.stringify({ op: "quiet", pad: "p".repeat(200) })),
      { mask },
    );
    const chunk = new Uint8Array(one.length * 256);
    for (let i = 0; i < 256; i++) chunk.set(one, i * one.length);
    let flooding = true;
    const flood = (async () => {
      try {
        while (flooding) await flooder.write(chunk);
      } catch { /* closed at the end */ }
    })();
    const broker = fixture.stage().broker;
    let maxPending = 0;
    const sampler = setInterval(() => {
      for (const socket of broker.sockets()) {
        maxPending = Math.max(maxPending, socket.pendingFrames);
      }
    }, 5);
    try {
      await poll(
        "flood under way",
        () => Promise.resolve(broker.byteTotals().in),
        (bytes) => bytes > 200_000,
      );
      const client = await Client.open(wsUrl(fixture, "/game", "/game"));
      try {
        let slowest = 0;
        for (let i = 0; i < 30; i++) {
          const started = performance.now();
          assert.deepEqual(await client.json({ op: "echo", i }), { op: "echo", i });
          slowest = Math.max(slowest, performance.now() - started);
        }
        assert.ok(slowest < 2000, `slowest reply took ${Math.round(slowest)} ms during the flood`);
      } finally {
        await client.close();
      }
      assert.ok(maxPending <= 64, `the flooder had ${maxPending} frames pending (bound 64)`);
      assert.ok(maxPending > 0, "the flood reached the scheduler");
    } finally {
      clearInterval(sampler);
      flooding = false;
      flooder.close();
      await flood;
    }
  }, { "#flow": { socket_pending: 64 } });
});

Deno.test("examples/ws_echo as written: names, echoes with a count, says bye and closes with 1000", async () => {
  const shipped = await loadConfig(join(repoRoot, "config/examples/ws_echo.json"), () => undefined);
  assert.equal(shipped.script.mains.echo, "ws_echo");
  await using fixture = await startFixture({
    config: { "#startup": [["script+echo"]], script: { "script+echo": "ws_echo" } },
    scripts: {
      "ws_echo.ts": await Deno.readTextFile(join(repoRoot, "scripts/examples/ws_echo.ts")),
    },
    args: ["127.0.0.1:0"],
  });
  const client = await Client.open(`ws://127.0.0.1:${fixture.port("", "echo")}/echo`);
  try {
    const hello = JSON.parse(await client.next() as string) as { hello: string };
    assert.match(hello.hello, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(await client.json({ name: "ann" }), { named: "ann" });
    assert.deepEqual(await client.json({ text: "hi" }), { from: "ann", text: "hi", count: 1 });
    assert.deepEqual(await client.json({ text: "again" }), {
      from: "ann",
      text: "again",
      count: 2,
    });
    assert.deepEqual(await client.json({ text: "bye" }), { bye: "ann" });
    assert.equal((await client.closed).code, 1000);
  } finally {
    await client.close();
  }
});

Deno.test("slow WebSocket peers are dropped: a stalled handshake, frame header or payload", async () => {
  await using fixture = await startFixture({
    scripts: { "start.ts": START },
    limits: { frameDeadlineMs: 300 },
  });
  const port = fixture.port("/game");
  const broker = fixture.stage().broker;
  const ended = async (conn: Deno.TcpConn) => {
    const buffer = new Uint8Array(1024);
    try {
      while (await conn.read(buffer) !== null) { /* the close frame, if any */ }
    } catch { /* reset */ }
    conn.close();
  };
  const started = Date.now();
  const handshake = await Deno.connect({ hostname: "127.0.0.1", port });
  await handshake.write(new TextEncoder().encode("GET /game HTTP/1.1\r\nHost: x\r\n"));
  const header = await rawWebSocket(port, "/game");
  const frame = encodeFrame(Opcode.Text, new TextEncoder().encode('{"op":"echo"}'), {
    mask: new Uint8Array([9, 9, 9, 9]),
  });
  await header.write(frame.subarray(0, 1));
  const payload = await rawWebSocket(port, "/game");
  await payload.write(frame.subarray(0, 10));
  await Promise.all([ended(handshake), ended(header), ended(payload)]);
  const waited = Date.now() - started;
  assert.ok(waited >= 250 && waited < 5000, `dropped after ${waited} ms`);
  assert.equal(broker.handshakeFailures.get("timeout"), 1);
  await poll(
    "closes counted",
    () => Promise.resolve(Object.fromEntries(broker.closedByReason)),
    (c) => c.read_error === 1 && c.frame_deadline === 1,
  );
  await poll(
    "sockets released",
    () => Promise.resolve(broker.registrySizes()),
    (sizes) => sizes.connections === 0 && sizes.perIp === 0,
  );
});
