/**
 * Two "machines" (two supervisors with different `#cluster.node` names) on one
 * real nats-server: messages cross between them, `=`/`+` mean this machine /
 * other machines, code from another machine is refused, and a NATS outage
 * fails remote sends fast while local work goes on, until NATS is back.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { poll } from "../_helpers/poll.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { REFERENCE } from "../_helpers/stage_fixture.ts";
import {
  freePort,
  type LogLine,
  StageProcess,
  writeDeployment,
} from "../_helpers/stage_process.ts";

const TOKEN = "s3cret-token";

const front = (port: number) =>
  REFERENCE + `
broker.ready("tcp://127.0.0.1:${port}?json", () => async (socket, data) => {
  try {
    switch (data.op) {
      case "ask":
        return socket.commit({ who: await stage.request(data.target, { timeout: 3000 }) });
      case "code":
        return socket.commit({ who: await stage.request("calc:run", () => 42, { timeout: 3000 }) });
      case "local":
        return socket.commit({ local: true });
    }
  } catch (error) {
    socket.commit({ error: error.name, message: error.message });
  }
});
`;

const CALC = REFERENCE + `
stage.waitfor("who", () => "beta:" + process.id);
stage.waitfor("run", (fn: () => unknown) => fn());
`;

type Reply = { who?: string; error?: string; message?: string; local?: boolean };

async function ask(client: FrameClient, value: Record<string, unknown>): Promise<Reply> {
  await client.send(value);
  return await client.next<Reply>(10_000);
}

const ready = (line: LogLine) => /^Process group \d+ is ready/.test(line.message);

/**
 * Runs alpha (front, a TCP port for the test) and a calc node with the given
 * `#cluster` sections; `run` starts once alpha's request reaches calc.
 */
async function withTwoNodes(
  alphaCluster: Record<string, unknown>,
  calcCluster: Record<string, unknown>,
  run: (client: FrameClient) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const alpha = await writeDeployment({
    "#threads": [1, 1000],
    "#cluster": alphaCluster,
    "#startup": [["script+front"]],
    script: { "%package": ["scripts"], "script+front": "front" },
  }, { "front.ts": front(port) });
  const calc = await writeDeployment({
    "#threads": [1, 1000],
    "#cluster": calcCluster,
    "#startup": [["script+calc"]],
    script: { "%package": ["scripts"], "script+calc": "calc" },
  }, { "calc.ts": CALC });
  try {
    await using nodeA = new StageProcess(["run", "--config", alpha.config]);
    await using nodeC = new StageProcess(["run", "--config", calc.config]);
    await nodeA.waitFor(ready);
    await nodeC.waitFor(ready);
    await using client = await FrameClient.connect(port, "json");
    // A request from alpha reaches calc once the calc node's lease has been heard.
    await poll(
      "calc on the other node",
      () => ask(client, { op: "ask", target: "calc:who" }),
      (r) => r.who !== undefined,
    );
    await run(client);
    nodeA.signal("SIGTERM");
    nodeC.signal("SIGTERM");
    assert.equal(await nodeA.exitCode(), 0);
    assert.equal(await nodeC.exitCode(), 0);
  } finally {
    await Deno.remove(alpha.dir, { recursive: true });
    await Deno.remove(calc.dir, { recursive: true });
  }
}

/** alpha and beta on one nats-server (token auth). */
async function withNodes(
  allowRemoteCode: boolean,
  run: (client: FrameClient, nats: NatsServer) => Promise<void>,
): Promise<void> {
  await using nats = await startNatsServer({ token: TOKEN });
  const cluster = (node: string) => ({
    nats: [nats.url],
    node,
    auth: { token: TOKEN },
    allowRemoteCode,
  });
  await withTwoNodes(cluster("alpha"), cluster("beta"), (client) => run(client, nats));
}

Deno.test("NATS: two nodes exchange messages; = and + choose machines; remote code is refused; an outage fails fast and heals", async () => {
  await withNodes(false, async (client, nats) => {
    assert.equal((await ask(client, { op: "ask", target: "calc:who" })).who, "beta:0");
    assert.equal((await ask(client, { op: "ask", target: "+calc:who" })).who, "beta:0");
    const here = await ask(client, { op: "ask", target: "=calc:who" });
    assert.equal(here.error, "StageNotFoundError", "no calc on this machine");

    // Functions from another machine are refused (allowRemoteCode is off).
    const code = await ask(client, { op: "code" });
    assert.equal(code.error, "RemoteCodeRefusedError", JSON.stringify(code));

    // NATS goes away: remote sends fail at once, local work goes on.
    await nats.stop();
    const started = Date.now();
    const down = await ask(client, { op: "ask", target: "calc:who" });
    assert.ok(
      down.error === "BusUnavailableError" || down.error === "StageNotFoundError",
      JSON.stringify(down),
    );
    assert.ok(Date.now() - started < 1000, "failed fast, not at the 3 s timeout");
    assert.deepEqual(await ask(client, { op: "local" }), { local: true });

    // NATS is back: the links reconnect by themselves and traffic resumes.
    await nats.restart();
    const back = await poll(
      "calc again",
      () => ask(client, { op: "ask", target: "calc:who" }),
      (r) => r.who !== undefined,
    );
    assert.equal(back.who, "beta:0");
  });
});

Deno.test("NATS: with #cluster.allowRemoteCode on an authenticated cluster, a function from another machine runs", async () => {
  await withNodes(true, async (client) => {
    assert.deepEqual(await ask(client, { op: "code" }), { who: 42 });
  });
});

Deno.test("NATS: a stage nobody in the primary cluster serves is reached through #cluster.backup", async () => {
  await using primary = await startNatsServer({ token: TOKEN });
  await using backup = await startNatsServer({ token: TOKEN });
  await withTwoNodes(
    { nats: [primary.url], backup: [backup.url], node: "alpha", auth: { token: TOKEN } },
    // The calc node belongs to the other cluster only.
    { nats: [backup.url], node: "gamma", auth: { token: TOKEN } },
    async (client) => {
      // the calc script's own name for itself
      assert.equal((await ask(client, { op: "ask", target: "calc:who" })).who, "beta:0");
    },
  );
});
