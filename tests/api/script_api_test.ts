/**
 * The script globals inside real workers: stage.id/worker, once, load with hot
 * reload, call, process, the idle function, worker permissions, and both
 * script-import paths end to end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

for (const transpile of [false, true]) {
  Deno.test(`Stage serves a script end to end with ${transpile ? "transpiled" : "native"} imports`, async () => {
    await using fixture = await startFixture({
      transpile,
      scripts: {
        "start.ts": REFERENCE + `
interface Echo { message: string; n: number }
const double = (n: number): number => n * 2;
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data: Echo) => {
  socket.commit({ ...data, n: double(data.n), stage: stage.id });
});
`,
      },
    });
    await using client = await FrameClient.connect(fixture.port(), "json");
    await client.send({ message: "echo", n: 21 });
    assert.deepEqual(await client.next(), { message: "echo", n: 42, stage: "start" });
  });
}

Deno.test("stage.load picks up an edited script without a restart", async () => {
  await using fixture = await startFixture({
    config: { script: { "%reload": 0 } },
    scripts: {
      "greeting.ts": "export default (name: string) => 'hello ' + name;\n",
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const greet = await stage.load<(name: string) => string>("greeting");
  socket.commit(greet(data.name));
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ name: "kim" });
  assert.equal(await client.next(), "hello kim");
  const file = join(fixture.dir, "scripts", "greeting.ts");
  await Deno.writeTextFile(file, "export default (name: string) => 'welcome back, ' + name;\n");
  await Deno.utime(file, Date.now() / 1000 + 10, Date.now() / 1000 + 10);
  await client.send({ name: "kim" });
  assert.equal(await client.next(), "welcome back, kim");
});

Deno.test("a script error is logged and the socket and stage keep working", async () => {
  await using fixture = await startFixture({
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.boom === "sync") throw new Error("boom");
  if (data.boom === "async") return Promise.reject(new Error("async boom"));
  socket.commit(data);
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ boom: "sync" }, { boom: "async" }, { ok: 1 });
  assert.deepEqual(await client.next(), { ok: 1 });
  await using other = await FrameClient.connect(fixture.port(), "json");
  await other.send({ ok: 2 });
  assert.deepEqual(await other.next(), { ok: 2 });
});

Deno.test("stage.once runs its function once per process, across workers", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const probePort = (probe.addr as Deno.NetAddr).port;
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of probe) {
      connections++;
      conn.close();
    }
  })();
  try {
    await using fixture = await startFixture({
      workers: 2,
      args: [String(probePort)],
      scripts: {
        "start.ts": REFERENCE + `
const ran = stage.once("connect-once", () =>
  broker.join("tcp://127.0.0.1:" + process.args[0] + "?raw", () => () => {}));
broker.ready("tcp://127.0.0.1:0?json", () => async (socket) => {
  socket.commit({ worker: stage.worker, ran: await ran });
});
`,
      },
    });
    const results = new Map<number, boolean>();
    for (let i = 0; i < 20 && results.size < 2; i++) {
      await using client = await FrameClient.connect(fixture.port(), "json");
      await client.send({});
      const reply = await client.next<{ worker: number; ran: boolean }>();
      results.set(reply.worker, reply.ran);
    }
    assert.equal(results.size, 2, "both workers answered");
    assert.deepEqual([...results.values()].sort(), [false, true]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(connections, 1);
  } finally {
    probe.close();
    await accepting;
  }
});

Deno.test("stage.call isolates exceptions; process and stage describe the process", async () => {
  await using fixture = await startFixture({
    workers: 1,
    args: ["--mode", "test"],
    config: { "agent+web": { timeout: 1234 }, "#startup": [["script+start", "agent+web"]] },
    scripts: {
      "lib.ts": "export function add(a: number, b: number) { return a + b; }\n" +
        "export function fail() { throw new RangeError('nope'); }\n",
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket) => {
  const thrown = stage.call(() => { throw new TypeError("bad"); }, []);
  const sum = await stage.call("lib+add", [1], 2);
  const failed = await stage.call("lib+fail", []);
  const missing = await stage.call("nope+x", []);
  socket.commit({
    thrown: thrown instanceof TypeError ? thrown.message : "not an error",
    sum,
    failed: failed instanceof RangeError ? failed.message : "not an error",
    missing: missing instanceof Error,
    id: stage.id,
    worker: stage.worker,
    processId: process.id,
    args: process.args,
    agent: process.config("agent+web"),
    title: process.title,
  });
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({});
  assert.deepEqual(await client.next(), {
    thrown: "bad",
    sum: 3,
    failed: "nope",
    missing: true,
    id: "start",
    worker: 0,
    processId: 0,
    args: ["--mode", "test"],
    agent: { timeout: 1234 },
    title: "stage[0]",
  });
});

Deno.test("the main script's default export runs as the idle function at the interval it returns", async () => {
  await using fixture = await startFixture({
    workers: 1,
    scripts: {
      "start.ts": REFERENCE + `
let calls = 0;
broker.ready("tcp://127.0.0.1:0?json", () => (socket) => socket.commit({ calls }));
export default function idle() {
  calls++;
  return calls < 5 ? 20 : 0; // five calls, then stop
}
`,
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 400));
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({});
  assert.deepEqual(await client.next(), { calls: 5 });
});

Deno.test("workers run with read access to the package path only", async () => {
  await using fixture = await startFixture({
    scripts: {
      "data.txt": "inside",
      "start.ts": REFERENCE + `
const attempt = async (fn: () => Promise<unknown>) => {
  try { await fn(); return "allowed"; } catch (error) { return error.name; }
};
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  socket.commit({
    inside: await attempt(() => Deno.readTextFile(data.inside)),
    outside: await attempt(() => Deno.readTextFile("/etc/hostname")),
    write: await attempt(() => Deno.writeTextFile(data.inside, "x")),
    net: await attempt(() => Deno.connect({ hostname: "127.0.0.1", port: 9 })),
    env: await attempt(async () => Deno.env.get("HOME")),
    run: await attempt(() => new Deno.Command("true").output()),
  });
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ inside: join(fixture.dir, "scripts", "data.txt") });
  assert.deepEqual(await client.next(), {
    inside: "allowed",
    outside: "NotCapable",
    write: "NotCapable",
    net: "NotCapable",
    env: "NotCapable",
    run: "NotCapable",
  });
});

Deno.test("an uncaught error in a timer, an unhandled rejection or Deno.exit does not take the worker down (close() neither)", async () => {
  await using fixture = await startFixture({
    workers: 1,
    scripts: {
      "start.ts": REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => (socket, data) => {
  if (data.op === "timer") setTimeout(() => { throw new Error("thrown in a timer"); }, 0);
  if (data.op === "reject") Promise.reject(new Error("nobody catches this"));
  if (data.op === "exit") {
    try { Deno.exit(1); } catch (error) {
      try { self.close(); } catch (closeError) {
        return socket.commit({ exit: error.message, close: closeError.message });
      }
    }
  }
  setTimeout(() => socket.commit({ alive: data.op }), 20);
});
`,
    },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await client.send({ op: "timer" });
  assert.deepEqual(await client.next(), { alive: "timer" });
  await client.send({ op: "reject" });
  assert.deepEqual(await client.next(), { alive: "reject" });
  await client.send({ op: "exit" });
  const refused = await client.next<{ exit: string; close: string }>();
  assert.match(refused.exit, /Deno\.exit\(\) is not available to stage scripts/);
  assert.match(refused.close, /close\(\) is not available to stage scripts/);
  await client.send({ op: "after" });
  assert.deepEqual(await client.next(), { alive: "after" });
});
