/**
 * Cluster-wide ordering locks end to end: two "machines" (two supervisors
 * with different `#cluster.node` names on one real nats-server) whose scripts
 * take turns on one lock with `stage.signal(">L.turn")`. Their critical
 * sections, timed in the scripts, never overlap.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { poll } from "../_helpers/poll.ts";
import { startNatsServer } from "../_helpers/nats_server.ts";
import { REFERENCE } from "../_helpers/stage_fixture.ts";
import {
  freePort,
  type LogLine,
  StageProcess,
  writeDeployment,
} from "../_helpers/stage_process.ts";

/** A stage that enters the lock's critical section `n` times on "go" and reports the sections. */
const script = (port: number, name: string) =>
  REFERENCE + `
const sections: number[][] = [];
stage.waitfor("turn", async () => {
  stage.signal(">>L.turn", 5000); // a loaded machine may take longer than the 100 ms default
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 15));
  sections.push([start, Date.now()]);
  stage.signal("<L.*");
});
stage.waitfor("who", () => "${name}");
broker.ready("tcp://127.0.0.1:${port}?json", () => async (socket, data) => {
  switch (data.op) {
    case "ask":
      try {
        return socket.commit({ who: await stage.request(data.target, { timeout: 3000 }) });
      } catch (error) {
        return socket.commit({ error: error.name });
      }
    case "go":
      for (let i = 0; i < data.n; i++) stage.signal(">L.turn");
      return socket.commit({ ok: true });
    case "report":
      return socket.commit({ sections });
  }
});
`;

type Reply = { who?: string; error?: string; ok?: boolean; sections?: number[][] };

async function ask(client: FrameClient, value: Record<string, unknown>): Promise<Reply> {
  await client.send(value);
  return await client.next<Reply>(10_000);
}

const ready = (line: LogLine) => /^Process group \d+ is ready/.test(line.message);

Deno.test("Ordering locks with #cluster: scripts on two machines take turns, never at once", async () => {
  await using nats = await startNatsServer();
  const nodes = ["alpha", "beta"].map((node) => ({ node, port: freePort() }));
  const deployments = await Promise.all(nodes.map(({ node, port }) =>
    writeDeployment({
      "#threads": [1, 1000],
      "#cluster": { nats: [nats.url], node },
      "#startup": [[`script+${node}`]],
      script: { "%package": ["scripts"], [`script+${node}`]: "locker" },
    }, { "locker.ts": script(port, node) })
  ));
  try {
    await using alpha = new StageProcess(["run", "--config", deployments[0]!.config]);
    await using beta = new StageProcess(["run", "--config", deployments[1]!.config]);
    await alpha.waitFor(ready);
    await beta.waitFor(ready);
    await using toAlpha = await FrameClient.connect(nodes[0]!.port, "json");
    await using toBeta = await FrameClient.connect(nodes[1]!.port, "json");
    // Each machine has heard the other's lease: they agree on the lock keeper.
    for (const [client, other] of [[toAlpha, "beta"], [toBeta, "alpha"]] as const) {
      await poll(
        `${other} seen from the other machine`,
        () => ask(client, { op: "ask", target: `${other}:who` }),
        (r) => r.who === other,
      );
    }
    const n = 6;
    assert.deepEqual(await ask(toAlpha, { op: "go", n }), { ok: true });
    assert.deepEqual(await ask(toBeta, { op: "go", n }), { ok: true });
    const report = (client: FrameClient) =>
      poll(
        "every section done",
        () => ask(client, { op: "report" }),
        (r) => r.sections?.length === n,
      );
    const sections = [
      ...(await report(toAlpha)).sections!.map(([start, end]) => ({ start, end, node: "alpha" })),
      ...(await report(toBeta)).sections!.map(([start, end]) => ({ start, end, node: "beta" })),
    ].sort((a, b) => a.start! - b.start!);
    for (let i = 1; i < sections.length; i++) {
      const [before, after] = [sections[i - 1]!, sections[i]!];
      assert.ok(
        after.start! >= before.end!,
        `sections overlap: ${JSON.stringify(before)} and ${JSON.stringify(after)}`,
      );
    }
    assert.ok(new Set(sections.map((s) => s.node)).size === 2, "both machines had turns");
    alpha.signal("SIGTERM");
    beta.signal("SIGTERM");
    assert.equal(await alpha.exitCode(), 0);
    assert.equal(await beta.exitCode(), 0);
  } finally {
    for (const { dir } of deployments) await Deno.remove(dir, { recursive: true });
  }
});
