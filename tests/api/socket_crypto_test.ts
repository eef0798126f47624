/**
 * `socket.crypto`: the cipher's checks, the order of encrypted output, the
 * broker's decryption of incoming frames, and end to end with real workers and
 * the client SDK (encrypted echo, a tampered frame, keys per socket, a socket
 * that moves to another worker keeps its key).
 */
import assert from "node:assert/strict";
import { Broker } from "../../core/api/broker.ts";
import type { PlatformPort } from "../../core/api/platform_port.ts";
import { Socket } from "../../core/api/socket.ts";
import { CRYPTO_OVERHEAD, DecryptError, SocketCipher } from "../../core/api/socket_crypto.ts";
import { type Codec, encryptedCodec, jsonCodec, StageClient } from "../../core/client/mod.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { CloseReason, ToMain } from "../../core/pool/wire.ts";
import { poll } from "../_helpers/poll.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

type Sent = { tag: number; a: number; b: number; body: Uint8Array };

function fakePort(sent: Sent[]): PlatformPort {
  return {
    send(tag, a, b, body, body2) {
      const bytes = new Uint8Array((body?.length ?? 0) + (body2?.length ?? 0));
      bytes.set(body ?? new Uint8Array(0));
      bytes.set(body2 ?? new Uint8Array(0), body?.length ?? 0);
      sent.push({ tag, a, b, body: bytes });
    },
    post() {},
    request: () => Promise.reject(new Error("no main thread here")),
  };
}

const key16 = () => crypto.getRandomValues(new Uint8Array(16));

Deno.test("SocketCipher.from names bad options", () => {
  assert.throws(
    () => SocketCipher.from({ key: new Uint8Array(20) }, "socket.crypto"),
    { name: "RangeError", message: /16, 24 or 32 bytes; got 20/ },
  );
  assert.throws(
    () => SocketCipher.from({ key: key16(), mode: "aes-cbc" as "aes-gcm" }, "socket.crypto"),
    { name: "TypeError", message: /unknown mode "aes-cbc"/ },
  );
  assert.throws(
    () => SocketCipher.from({ key: "secret" as unknown as Uint8Array }, "socket.crypto"),
    { name: "TypeError", message: /key must be a Uint8Array/ },
  );
  assert.throws(() => SocketCipher.from(null as never, "socket.crypto"), TypeError);
});

Deno.test("SocketCipher.open refuses short, altered and foreign frames", async () => {
  const cipher = SocketCipher.from({ key: key16() }, "socket.crypto");
  const [head, body] = await cipher.seal(jsonCodec.encode({ a: 1 }));
  const frame = new Uint8Array([...head, ...body]);
  assert.equal(frame.length, jsonCodec.encode({ a: 1 }).length + CRYPTO_OVERHEAD);
  await assert.rejects(cipher.open(frame.subarray(0, 31)), DecryptError);
  const altered = frame.slice();
  altered[20]! ^= 4;
  await assert.rejects(cipher.open(altered), /failed AES-GCM authentication/);
  const other = SocketCipher.from({ key: key16() }, "socket.crypto");
  await assert.rejects(other.open(frame), DecryptError);
  // Authentic but with a wrong inner length header: a bad frame (TypeError), not a DecryptError.
  const [badHead, badBody] = await cipher.seal(Uint8Array.of(9, 0, 0, 0, 1));
  await assert.rejects(cipher.open(new Uint8Array([...badHead, ...badBody])), {
    name: "TypeError",
    message: /5 bytes says it has 9/,
  });
});

Deno.test("Socket.commit keeps plain and encrypted frames and the close in commit order", async () => {
  const sent: Sent[] = [];
  const socket = new Socket(7, "l", "r", fakePort(sent), {
    codec: "json",
    maxOut: 1024,
    protocol: "tcp",
  });
  const key = key16();
  socket.commit({ n: 1 });
  socket.crypto = { key };
  assert.deepEqual(socket.crypto?.key, key);
  socket.commit({ n: 2 });
  socket.crypto = null;
  assert.equal(socket.crypto, undefined);
  socket.commit({ n: 3 }); // plain, but behind the frame still being encrypted
  socket.close();
  assert.equal(socket.closed, true);
  assert.equal(sent.length, 1);
  await poll("the queued output", () => Promise.resolve(sent.length), (n) => n === 4, 2000, 1);
  assert.deepEqual(sent.map((record) => record.tag), [
    ToMain.Commit,
    ToMain.Commit,
    ToMain.Commit,
    ToMain.Close,
  ]);
  assert.deepEqual(jsonCodec.decode(sent[0]!.body), { n: 1 });
  const opened = await SocketCipher.from({ key }, "test").open(sent[1]!.body);
  assert.deepEqual(jsonCodec.decode(opened), { n: 2 });
  assert.deepEqual(jsonCodec.decode(sent[2]!.body), { n: 3 });
});

Deno.test("socket.crypto refuses what it cannot encrypt", async () => {
  const sent: Sent[] = [];
  const small = new Socket(1, "", "", fakePort(sent), { codec: "json", maxOut: 40 });
  small.crypto = { key: key16() };
  small.commit({}); // 6 + 32 bytes
  assert.throws(() => small.commit({ a: "123456" }), {
    name: "RangeError",
    message: /Encrypted frame of 50 bytes \(18 \+ 32 of encryption\) exceeds .* OUT limit of 40/,
  });
  const remote = new Socket(2, "", "", fakePort(sent), undefined);
  assert.throws(() => remote.crypto = { key: key16() }, /socket's home worker/);
  const ws = new Socket(3, "", "", fakePort(sent), { codec: "json", maxOut: 99, protocol: "ws" });
  assert.throws(() => ws.crypto = { key: key16() }, /only tcp:\/\/ sockets .* ws:\/\//);
  await assert.rejects(small.setCrypto({ key: new Uint8Array(3) }), RangeError);
  await poll("the encrypted commit", () => Promise.resolve(sent.length), (n) => n === 1, 2000, 1);
});

Deno.test("Broker decrypts an encrypted socket's frames and closes it on a bad one", async () => {
  const sent: Sent[] = [];
  const broker = new Broker(fakePort(sent), coreLogger("test"));
  const got: unknown[] = [];
  broker.ready("tcp://127.0.0.1:0?json", () => (_socket, data) => void got.push(data));
  const info = { url: "tcp://127.0.0.1:0?json", local: "127.0.0.1:1", remote: "127.0.0.1:2" };
  broker.open(5, new TextEncoder().encode(JSON.stringify(info)));
  const key = key16();
  broker.f(5).crypto = { key };
  const client = encryptedCodec("json", key);
  await broker.frame(5, client.encode({ hello: 1 }));
  assert.deepEqual(got, [{ hello: 1 }]);
  const bad = client.encode({ hello: 2 });
  bad[bad.length - 3]! ^= 1;
  await broker.frame(5, bad);
  const close = sent.find((record) => record.tag === ToMain.Close);
  assert.equal(close?.b, CloseReason.DecryptFailed);
  assert.match(new TextDecoder().decode(close!.body), /failed AES-GCM authentication/);
  await broker.frame(5, client.encode({ hello: 3 })); // queued behind the bad one: dropped
  assert.deepEqual(got, [{ hello: 1 }]);
});

const CRYPTO_SCRIPT = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (Array.isArray(data.key)) {
    // The handshake, in the clear: from now on this socket is encrypted.
    socket.crypto = { key: new Uint8Array(data.key) };
    socket.helper = () => 0; // a field that cannot be cloned: the key must move all the same
    socket.commit({ ready: true, id: socket.id, worker: stage.worker });
    return;
  }
  if (typeof data.spin === "number") {
    const end = Date.now() + data.spin;
    while (Date.now() < end) { /* hold this worker */ }
    return;
  }
  socket.commit({ echo: data.echo, worker: stage.worker, moved: socket.moved });
});
`;

/** Connects, sends the key in the clear, and switches the client's codec to it. */
async function encryptedClient(
  port: number,
  key: Uint8Array,
  codec = encryptedCodec("json", null),
) {
  const client = await StageClient.connect({ port, codec });
  client.post({ key: Array.from(key) });
  codec.setKey(key); // the server answers only after it read the key
  const ready = await client.next(5000) as { ready: boolean; id: number; worker: number };
  assert.equal(ready.ready, true);
  return { client, codec, id: ready.id, worker: ready.worker };
}

Deno.test("socket.crypto encrypts an echo end to end, with a key per socket", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": CRYPTO_SCRIPT } });
  const port = fixture.port();
  const keyA = key16();
  const keyB = crypto.getRandomValues(new Uint8Array(32));
  const a = await encryptedClient(port, keyA);
  await using _a = a.client;
  const b = await encryptedClient(port, keyB);
  await using _b = b.client;
  for (let i = 0; i < 3; i++) {
    await a.client.send({ echo: `a${i}` });
    await b.client.send({ echo: `b${i}` });
    assert.equal((await a.client.next(5000) as { echo: string }).echo, `a${i}`);
    assert.equal((await b.client.next(5000) as { echo: string }).echo, `b${i}`);
  }
  assert.equal(fixture.stage().broker.closedByReason.get("decrypt_failed") ?? 0, 0);
});

Deno.test("a tampered frame or another socket's key closes only that socket (decrypt_failed)", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": CRYPTO_SCRIPT } });
  const port = fixture.port();
  const goodKey = key16();
  const good = await encryptedClient(port, goodKey);
  await using _good = good.client;

  let tamper = false;
  const inner = encryptedCodec("json", null);
  const tampering: Codec = {
    name: inner.name,
    decode: (frame) => inner.decode(frame),
    encode(value) {
      const frame = inner.encode(value);
      if (tamper) frame[frame.length - 1]! ^= 0x20;
      return frame;
    },
  };
  const victimKey = key16();
  const victim = await StageClient.connect({ port, codec: tampering });
  await using _victim = victim;
  victim.post({ key: Array.from(victimKey) });
  inner.setKey(victimKey);
  assert.equal((await victim.next(5000) as { ready: boolean }).ready, true);
  tamper = true;
  victim.post({ echo: "altered" });
  // Sealed with the good socket's key, sent on a socket that has its own.
  const stranger = await encryptedClient(port, key16());
  await using _stranger = stranger.client;
  stranger.codec.setKey(goodKey);
  stranger.client.post({ echo: "foreign" });

  const broker = fixture.stage().broker;
  await poll(
    "two decrypt_failed closes",
    () => Promise.resolve(broker.closedByReason.get("decrypt_failed") ?? 0),
    (n) => n === 2,
    10_000,
    10,
  );
  await poll(
    "both clients disconnected",
    () => Promise.resolve([victim.state, stranger.client.state]),
    (states) => states.every((state) => state === "lost"),
    10_000,
    10,
  );
  await good.client.send({ echo: "still here" });
  assert.equal((await good.client.next(5000) as { echo: string }).echo, "still here");
});

Deno.test("an encrypted socket that moves to another worker keeps its key", async () => {
  await using fixture = await startFixture({ scripts: { "start.ts": CRYPTO_SCRIPT } });
  const port = fixture.port();
  const scheduler = fixture.stage().scheduler;
  const moving = await encryptedClient(port, key16());
  await using _moving = moving.client;
  // A plain socket on the same worker, to hold that worker past its time slice.
  const clients: StageClient[] = [];
  try {
    let blocker: StageClient | undefined;
    for (let i = 0; i < 8 && blocker === undefined; i++) {
      const client = await StageClient.connect({ port, codec: "json" });
      clients.push(client);
      await client.send({ echo: "where" });
      const reply = await client.next(5000) as { worker: number };
      if (reply.worker === moving.worker) blocker = client;
    }
    assert.ok(blocker !== undefined, "no second socket landed on the same worker");
    blocker.post({ spin: 800 });
    await poll(
      "the home worker stuck",
      () => Promise.resolve(scheduler.available(moving.worker)),
      (available) => !available,
      5000,
      5,
    );
    await moving.client.send({ echo: "moved" });
    const reply = await moving.client.next(5000) as {
      echo: string;
      worker: number;
      moved: boolean;
    };
    assert.equal(reply.echo, "moved");
    assert.equal(reply.moved, true);
    assert.notEqual(reply.worker, moving.worker);
  } finally {
    for (const client of clients) await client.close();
  }
});
