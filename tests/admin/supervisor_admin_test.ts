/**
 * The admin API of `stage run` as users run it: a supervisor with two process
 * groups serves one API on `#admin.listen` that aggregates its children (each
 * serves its own on a private port), and `stage run --single` serves its own.
 */
import assert from "node:assert/strict";
import { REFERENCE } from "../_helpers/stage_fixture.ts";
import { freePort, StageProcess, writeDeployment } from "../_helpers/stage_process.ts";

const TOKEN = "test-token";

const SCRIPT = (id: string) =>
  REFERENCE + `
stage.waitfor("who", () => "${id}:" + process.pid);
stage.waitfor("add", (a: number, b: number) => a + b);
`;

async function deployment(adminPort: number, gatewayPort = freePort()) {
  return await writeDeployment({
    "#gateway": { listen: `127.0.0.1:${gatewayPort}`, targets: ["a:add", "b:*"] },
    "#threads": [1, 100],
    "#startup": [["script+a", "=ticket+ticket"], ["script+b"], ["script+b"]],
    "=ticket+ticket": [1, { job: 2 }],
    "#admin": { listen: `127.0.0.1:${adminPort}`, token: TOKEN },
    script: { "%package": ["scripts"], "script+a": "a", "script+b": "b" },
  }, { "a.ts": SCRIPT("a"), "b.ts": SCRIPT("b") });
}

async function get(port: number, path: string, token = TOKEN) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) };
}

async function post(port: number, path: string, body: unknown) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** Polls `/health` until it is 200 (every group ready). */
async function healthy(port: number, stage: StageProcess, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const health = await get(port, "/health");
      if (health.status === 200) return health.json();
      last = health.text;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not healthy within ${timeoutMs} ms: ${last}\n${stage.stderr.join("\n")}`);
}

/** `POST /api/:target` on the public gateway. */
async function api(port: number, target: string, values: unknown[]) {
  const response = await fetch(`http://127.0.0.1:${port}/api/${encodeURIComponent(target)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(values),
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("the supervisor's admin API aggregates its process groups", async () => {
  const port = freePort();
  const gatewayPort = freePort();
  const { config } = await deployment(port, gatewayPort);
  await using stage = new StageProcess(["run", "--config", config]);
  const health = await healthy(port, stage);
  assert.deepEqual(health.processes.map((p: { process: string }) => p.process), [
    "0",
    "1",
    "2",
  ]);

  assert.equal((await get(port, "/stages", "wrong")).status, 401);
  const stages = (await get(port, "/stages")).json() as {
    id: string;
    process: string;
    state: string;
    instances: number;
  }[];
  assert.deepEqual(
    stages.map((s) => `${s.process}:${s.id}:${s.state}:${s.instances}`).sort(),
    ["0:a:ready:1", "0:ticket:ready:1", "1:b:ready:2", "2:b:ready:2"],
  );

  const metrics = (await get(port, "/metrics")).text;
  assert.match(metrics, /^stage_process_up\{process="0"\} 1$/m);
  assert.match(metrics, /^stage_process_up\{process="1"\} 1$/m);
  assert.match(metrics, /^stage_process_up\{process="2"\} 1$/m);
  assert.match(metrics, /^stage_queue_depth\{process="1",stage="b"\} 0$/m);
  assert.equal(metrics.match(/^# TYPE stage_queue_depth /gm)?.length, 1, "one family, merged");

  // A message into the deployment; the bus takes it to the process serving the stage.
  const who = await post(port, "/signal", { target: "b:who", values: [] });
  assert.equal(who.status, 200);
  assert.match(who.json.reply, /^b:\d+$/);
  assert.deepEqual((await post(port, "/signal", { target: "a:add", values: [2, 3] })).json, {
    reply: 5,
  });
  const missing = await post(port, "/signal", { target: "nobody:x", values: [], timeout: 2000 });
  assert.equal(missing.status, 404);

  const workers = (await get(port, "/workers")).json() as { process: string; stage: string }[];
  assert.deepEqual(workers.map((w) => `${w.process}:${w.stage}`).sort(), ["0:a", "1:b", "2:b"]);
  const tickets = (await get(port, "/tickets")).json() as { category: string }[];
  assert.ok(tickets.some((t) => t.category === "job"), JSON.stringify(tickets));
  const routes = (await get(port, "/routes")).json() as { process: string }[];
  assert.deepEqual(routes.map((r) => r.process), ["0", "1", "2"]);

  const reload = await post(port, "/reload", {});
  assert.equal(reload.status, 200, JSON.stringify(reload.json));
  assert.equal(reload.json.result.processes.length, 3);
  assert.match((await post(port, "/signal", { target: "b:who", values: [] })).json.reply, /^b:/);

  // The public gateway, served by every group on one shared port.
  const whoIs = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const reply = await api(gatewayPort, "b:who", []);
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    whoIs.add(reply.json.reply);
  }
  assert.equal(whoIs.size, 2, "the two instances of b take turns, whichever process took it");
  assert.deepEqual(await api(gatewayPort, "a:add", [20, 22]), { status: 200, json: { reply: 42 } });
  assert.equal((await api(gatewayPort, "a:who", [])).status, 403, "not on the allowlist");

  const drain = await post(port, "/drain", {});
  assert.equal(drain.status, 202);
  assert.equal(await stage.exitCode(), 0, "a drained deployment exits cleanly");
  assert.ok(stage.lines.some((l) => l.message.includes("an admin drain request")));
});

Deno.test("stage run --single serves its own admin API and drains on request", async () => {
  const port = freePort();
  const { config } = await deployment(port);
  await using stage = new StageProcess(["run", "--single", "--config", config]);
  const health = await healthy(port, stage);
  assert.deepEqual(health, { live: true, ready: true, state: "ready" });
  assert.deepEqual((await post(port, "/signal", { target: "b:add", values: [1, 1] })).json, {
    reply: 2,
  });
  const stages = (await get(port, "/stages")).json() as { id: string }[];
  assert.deepEqual(stages.map((s) => s.id).sort(), ["a", "b", "ticket"]);
  assert.equal((await post(port, "/drain", {})).status, 202);
  assert.equal(await stage.exitCode(), 0);
});

Deno.test("stage run refuses to start when the configured admin address is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { config } = await deployment((taken.addr as Deno.NetAddr).port);
    await using stage = new StageProcess(["run", "--single", "--config", config]);
    assert.equal(await stage.exitCode(), 1);
    assert.ok(
      stage.lines.some((l) =>
        l.level === "FATAL" && /admin API/i.test(l.message + JSON.stringify(l.properties))
      ),
      stage.lines.map((l) => l.message).join("\n"),
    );
  } finally {
    taken.close();
  }
});
