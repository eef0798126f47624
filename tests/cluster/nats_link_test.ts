/**
 * NatsLink against a real nats-server on a free loopback port: exchange, queue
 * groups, broadcast, request/reply, authentication, and failing fast while the
 * server is down, then reconnecting by itself when it is back.
 */
import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import {
  BusConnectError,
  BusDisconnectedError,
  BusNoRespondersError,
  BusTimeoutError,
  type LinkStatus,
  NatsLink,
  type NatsLinkOptions,
} from "../../core/cluster/nats_link.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

interface LogRecord {
  level: string;
  message: string;
}

/** A logger that records what it is given (only the methods NatsLink calls are used). */
function recordingLogger(records: LogRecord[] = []): Logger {
  const record = (level: string) => (message: string) => {
    records.push({ level, message });
  };
  return new Proxy({}, { get: (_, level) => record(String(level)) }) as Logger;
}

/** A link to `server` with a short backoff, so reconnects come quickly. */
function link(
  server: NatsServer,
  name: string,
  extra: Partial<NatsLinkOptions> = {},
): Promise<NatsLink> {
  return NatsLink.connect({
    servers: [server.url],
    name,
    log: recordingLogger(),
    reconnect: { initialMs: 20, maxMs: 100 },
    ...extra,
  });
}

/** Polls `condition` every 10 ms; fails naming `what` after `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `link` reports `status`. */
function nextStatus(link: NatsLink, status: LinkStatus): Promise<void> {
  return new Promise((resolve) => {
    const remove = link.onStatus((seen) => {
      if (seen === status) {
        remove();
        resolve();
      }
    });
  });
}

Deno.test("NatsLink delivers published bytes to a subscriber on another link", async () => {
  await using server = await startNatsServer();
  await using a = await link(server, "a");
  await using b = await link(server, "b");
  const got: string[] = [];
  a.subscribe("greet.*", (bytes, message) => {
    got.push(`${message.subject}=${decode(bytes)}`);
  });
  await a.flush();
  assert.equal(a.connected, true);
  b.publish("greet.x", encode("hello"));
  b.publish("greet.y", encode("world"));
  await waitFor(() => got.length === 2, 2000, "two messages");
  assert.deepEqual(got, ["greet.x=hello", "greet.y=world"]);
});

Deno.test("NatsLink queue subscribers share the messages; plain subscribers each get all", async () => {
  await using server = await startNatsServer();
  const links = await Promise.all(["q1", "q2", "q3", "pub"].map((name) => link(server, name)));
  await using _links = {
    async [Symbol.asyncDispose]() {
      await Promise.all(links.map((l) => l.close()));
    },
  };
  const [q1, q2, q3, pub] = links as [NatsLink, NatsLink, NatsLink, NatsLink];
  const queued = [0, 0, 0];
  const plain = [0, 0, 0];
  [q1, q2, q3].forEach((l, i) => {
    l.subscribe("work", () => void queued[i]!++, { queue: "workers" });
    l.subscribe("work", () => void plain[i]!++);
  });
  await Promise.all([q1, q2, q3].map((l) => l.flush()));
  for (let i = 0; i < 300; i++) pub.publish("work", encode(String(i)));
  await waitFor(
    () => queued.reduce((a, b) => a + b) === 300 && plain.every((n) => n === 300),
    5000,
    `300 messages (queued ${queued}, plain ${plain})`,
  );
  await pub.flush();
  assert.equal(queued.reduce((a, b) => a + b), 300, "a queued message went to more than one");
  for (const n of queued) assert.ok(n >= 60 && n <= 180, `uneven queue split: ${queued}`);
  assert.deepEqual(plain, [300, 300, 300]);
});

Deno.test("NatsLink request gets the reply; no subscriber and no answer reject with named errors", async () => {
  await using server = await startNatsServer();
  await using a = await link(server, "a");
  await using b = await link(server, "b");
  b.subscribe("upper", (bytes, message) => message.respond(encode(decode(bytes).toUpperCase())));
  b.subscribe("silent", () => {});
  await b.flush();
  assert.equal(decode(await a.request("upper", encode("abc"), 2000)), "ABC");
  const replies = await Promise.all(
    ["x", "y", "z"].map((t) => a.request("upper", encode(t), 2000)),
  );
  assert.deepEqual(replies.map(decode), ["X", "Y", "Z"]);
  await assert.rejects(a.request("nobody", encode(""), 2000), BusNoRespondersError);
  await assert.rejects(a.request("silent", encode(""), 50), (error: Error) => {
    assert.ok(error instanceof BusTimeoutError);
    assert.match(error.message, /"silent" within 50 ms/);
    return true;
  });
  await assert.rejects(a.request("upper", encode(""), 0), RangeError);
});

Deno.test("NatsLink authenticates with user/pass and token, and rejects wrong credentials clearly", async () => {
  {
    await using server = await startNatsServer({ user: "stage", pass: "s3cret-pass" });
    await using ok = await link(server, "ok", { auth: { user: "stage", pass: "s3cret-pass" } });
    ok.subscribe("ping", (_, m) => m.respond(encode("pong")));
    await ok.flush();
    assert.equal(decode(await ok.request("ping", encode(""), 2000)), "pong");
    for (const auth of [{ user: "stage", pass: "wrong-pass" }, {}]) {
      await assert.rejects(link(server, "bad", { auth }), (error: Error) => {
        assert.ok(error instanceof BusConnectError, String(error));
        assert.ok(error.message.includes(server.url), error.message);
        assert.match(error.message, /Authorization Violation/);
        assert.ok(!error.message.includes("pass"), `leaks the password: ${error.message}`);
        return true;
      });
    }
    // Credentials in the URL are not echoed either.
    await assert.rejects(
      NatsLink.connect({
        servers: [`nats://stage:wrong-pass@127.0.0.1:${server.port}`],
        name: "url",
        log: recordingLogger(),
      }),
      (error: Error) => !error.message.includes("wrong-pass") && error instanceof BusConnectError,
    );
  }
  {
    await using server = await startNatsServer({ token: "t0ken-value" });
    await using ok = await link(server, "ok", { auth: { token: "t0ken-value" } });
    await ok.flush();
    assert.equal(ok.connected, true);
    await assert.rejects(link(server, "bad", { auth: { token: "other" } }), BusConnectError);
  }
});

Deno.test("NatsLink.connect rejects an unreachable server and bad options, naming them", async () => {
  await using server = await startNatsServer();
  const url = server.url;
  await server.stop();
  await assert.rejects(link(server, "x"), (error: Error) => {
    assert.ok(error instanceof BusConnectError);
    assert.ok(error.message.includes(url), error.message);
    return true;
  });
  await assert.rejects(link(server, "x", { servers: ["not a url"] }), BusConnectError);
  await assert.rejects(link(server, "x", { servers: [] }), TypeError);
  await assert.rejects(
    link(server, "x", { auth: { user: "u", token: "t" } }),
    TypeError,
  );
  await assert.rejects(
    link(server, "x", { reconnect: { initialMs: 100, maxMs: 10 } }),
    RangeError,
  );
});

Deno.test("NatsLink fails fast while the server is down and reconnects by itself when it is back", async () => {
  await using server = await startNatsServer();
  const records: LogRecord[] = [];
  await using a = await link(server, "a", { log: recordingLogger(records) });
  await using b = await link(server, "b");
  b.subscribe("echo", (bytes, message) => message.respond(bytes));
  const got: string[] = [];
  b.subscribe("note", (bytes) => void got.push(decode(bytes)));
  await b.flush();
  assert.equal(decode(await a.request("echo", encode("before"), 2000)), "before");
  // A request in flight when the connection drops rejects then, not at its timeout.
  a.subscribe("never", () => {});
  await a.flush();
  const inFlight = a.request("never", encode(""), 10_000);
  inFlight.catch(() => {});
  const statuses: LinkStatus[] = [];
  a.onStatus((status) => statuses.push(status));

  const down = nextStatus(a, "disconnected");
  const stopped = performance.now();
  await server.stop();
  await within(down, 2000, "the link notices the server is gone");
  assert.equal(a.connected, false);
  await assert.rejects(inFlight, BusDisconnectedError);
  assert.ok(performance.now() - stopped < 2000, "the in-flight request waited");

  const start = performance.now();
  assert.throws(() => a.publish("note", encode("lost")), (error: Error) => {
    assert.ok(error instanceof BusDisconnectedError);
    assert.ok(error.message.includes(server.url) && /reconnecting/.test(error.message));
    return true;
  });
  await assert.rejects(a.request("echo", encode("x"), 5000), BusDisconnectedError);
  await assert.rejects(a.flush(), BusDisconnectedError);
  assert.ok(performance.now() - start < 100, "sends did not fail fast");
  // Stay down across several reconnect attempts (backoff 20..100 ms).
  await new Promise((resolve) => setTimeout(resolve, 300));

  const upA = nextStatus(a, "connected");
  const upB = nextStatus(b, "connected");
  await server.restart();
  await within(Promise.all([upA, upB]), 5000, "both links reconnect");
  assert.equal(a.connected, true);
  // Subscriptions came back with the connection: the same links carry traffic again.
  await b.flush();
  assert.equal(decode(await a.request("echo", encode("after"), 2000)), "after");
  a.publish("note", encode("delivered"));
  await waitFor(() => got.length === 1, 2000, "the note after reconnect");
  assert.deepEqual(got, ["delivered"], "a send while disconnected was queued and replayed");
  assert.deepEqual(statuses, ["disconnected", "connected"]);
  const transitions = records.filter((r) => /disconnected|reconnected/.test(r.message));
  assert.deepEqual(transitions.map((r) => r.level), ["warning", "info"], "logged per attempt");
});

Deno.test("NatsLink close drains, is idempotent, and refuses sends afterwards", async () => {
  await using server = await startNatsServer();
  const a = await link(server, "a");
  await using b = await link(server, "b");
  b.subscribe("silent", () => {});
  await b.flush();
  const abandoned = assert.rejects(a.request("silent", encode(""), 10_000), (error: Error) => {
    assert.ok(error instanceof BusDisconnectedError);
    assert.match(error.message, /closed/);
    return true;
  });
  await a.close();
  await a.close();
  await abandoned;
  assert.equal(a.connected, false);
  assert.throws(() => a.publish("x", encode("")), /is closed/);
  assert.throws(() => a.subscribe("x", () => {}), BusDisconnectedError);
});
