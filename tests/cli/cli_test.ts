/**
 * The `stage` command line as users run it: a real subprocess of main.ts.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, repoRoot } from "../_helpers/stage_fixture.ts";
import { freePort, runStage, StageProcess, writeDeployment } from "../_helpers/stage_process.ts";
import { parseCli, UsageError } from "../../core/cli/mod.ts";

const CONFIG = {
  "#threads": [2, 1000],
  "#startup": [["script+start"]],
  script: { "%package": ["scripts"], "script+start": "start" },
};

const SERVER = REFERENCE + `
broker.ready("tcp://127.0.0.1:" + process.args[0] + "?json", () => async (socket, data) => {
  if (data.boom) throw new TypeError("boom from the script");
  if (data.slow) await new Promise((resolve) => setTimeout(resolve, data.slow));
  socket.commit(data);
});
`;

Deno.test("parseCli: the last --config wins; unknown commands and options are usage errors", () => {
  const cli = parseCli(["run", "--config", "a.json", "--config", "b.json", "--", "x", "--y"]);
  assert.deepEqual(cli, {
    command: "run",
    config: "b.json",
    single: false,
    supervise: true,
    transpile: false,
    args: ["x", "--y"],
  });
  const single = parseCli(["run", "--single"]);
  assert.equal(single.command === "run" && single.supervise, false, "--single: no supervisor");
  assert.equal(
    parseCli(["check"], (n) => n === "STAGE_TRANSPILE" ? "1" : undefined).command,
    "check",
  );
  assert.throws(() => parseCli(["serve"]), UsageError);
  assert.throws(() => parseCli(["run", "--bogus"]), UsageError);
  assert.throws(() => parseCli(["run", "--workers", "0"]), UsageError);
  assert.throws(() => parseCli(["run", "--config"]), UsageError);
});

Deno.test("parseCli: the supervisor is the default; --single and --group choose otherwise, one at a time", () => {
  const child = parseCli(["run", "--group", "1", "--workers", "2", "--", "x"]);
  assert.equal(child.command === "run" && child.group, 1);
  assert.equal(child.command === "run" && child.supervise, false);
  const supervisor = parseCli(["run", "--supervise"]);
  assert.equal(supervisor.command === "run" && supervisor.supervise, true);
  assert.equal(supervisor.command === "run" && "group" in supervisor, false);
  assert.throws(() => parseCli(["run", "--group", "-1"]), /--group expects .*got "-1"/);
  assert.throws(() => parseCli(["run", "--group", "one"]), /got "one"/);
  assert.throws(() => parseCli(["run", "--group"]), /needs a value/);
  assert.throws(
    () => parseCli(["run", "--supervise", "--single"]),
    /--single and --supervise cannot be combined/,
  );
  assert.throws(() => parseCli(["run", "--supervise", "--group", "0"]), /cannot be combined/);
  assert.throws(() => parseCli(["check", "--supervise"]), /Unknown option "--supervise"/);
});

Deno.test("stage run --group exits 2 when the config has no such #startup group", async () => {
  const { dir, config } = await writeDeployment(CONFIG, { "start.ts": SERVER });
  try {
    const result = await runStage(["run", "--config", config, "--group", "1"]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      /--group 1 is not a #startup group .*it has 1 group\(s\) \(0\.\.0\)/,
    );
    assert.doesNotMatch(result.stdout, /listening on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage run --group run by hand serves its group, names it in its title and ignores a closed stdin", async () => {
  const { dir, config } = await writeDeployment(
    {
      ...CONFIG,
      "#startup": [["script+other"], ["script+start"]],
      script: {
        ...CONFIG.script,
        "script+other": "other",
      },
    },
    { "start.ts": SERVER, "other.ts": "throw new Error('group 0 must not start');" },
  );
  const port = freePort();
  try {
    // StageProcess's stdin is /dev/null: end-of-file at once, which only a supervised child heeds.
    await using stage = new StageProcess([
      "run",
      "--config",
      config,
      "--group",
      "1",
      "--",
      String(port),
    ]);
    const running = await stage.waitFor((line) => line.message.startsWith("Stage running"));
    assert.equal(running.properties.group, 1);
    await using client = await FrameClient.connect(port, "json");
    await client.send({ n: 1 });
    assert.deepEqual(await client.next(), { n: 1 });
    const title = await Deno.readTextFile(`/proc/${stage.child.pid}/cmdline`);
    assert.equal(title.replace(/\0+$/, ""), "stage[1]");
    assert.ok(!stage.lines.some((line) => line.message.startsWith("Stage stopping")));
    stage.signal("SIGTERM");
    await client.closedByServer();
    assert.equal(await stage.exitCode(), 0);
    assert.ok(stage.lines.some((line) => line.message.includes("SIGTERM")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage version prints the version; an unknown command exits 2", async () => {
  const version = await runStage(["version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^stage \d+\.\d+\.\d+/);
  const bad = await runStage(["serve"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown command "serve"/);
});

Deno.test("stage run exits 2 on a bad config, naming the key path, expectation and value", async () => {
  const { dir, config } = await writeDeployment(
    { ...CONFIG, "#threads": ["four"] },
    { "start.ts": SERVER },
  );
  try {
    const result = await runStage(["run", "--config", config, "--", String(freePort())]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /#threads\[0\]/);
    assert.match(result.stderr, /expected/);
    assert.match(result.stderr, /four/);
    assert.doesNotMatch(result.stdout, /listening on/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage run exits 1 when the main script fails to load", async () => {
  const { dir, config } = await writeDeployment(CONFIG, {
    "start.ts": "throw new Error('broken at the top level');",
  });
  try {
    const result = await runStage(["run", "--config", config]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /broken at the top level/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const transpile of [false, true]) {
  Deno.test(`stage run serves, logs a script error with its position, and stops gracefully on SIGTERM (${transpile ? "transpiled" : "native"} scripts)`, async () => {
    const { dir, config } = await writeDeployment(CONFIG, { "start.ts": SERVER });
    const port = freePort();
    try {
      await using stage = new StageProcess(
        ["run", "--config", config, "--", String(port)],
        transpile ? { STAGE_TRANSPILE: "1" } : {},
      );
      await stage.waitFor((line) => line.message.includes("listening on"));
      await using client = await FrameClient.connect(port, "json");
      await client.send({ boom: true }, { echo: 1 });
      assert.deepEqual(await client.next(), { echo: 1 });
      const error = await stage.waitFor((line) => line.message.includes("Script error"));
      assert.equal(error.level, "ERROR");
      assert.match(error.message, /boom from the script/);
      assert.match(error.message, /scripts\/start\.ts:4:\d+/);
      // A reply still being computed when SIGTERM arrives is delivered before the socket closes.
      await client.send({ slow: 300 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      stage.signal("SIGTERM");
      assert.deepEqual(await client.next(), { slow: 300 });
      await client.closedByServer();
      assert.equal(await stage.exitCode(), 0);
      assert.ok(stage.lines.some((line) => line.message === "Stage stopped"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the default config runs the default start script: echo and time on 127.0.0.1:8801", async () => {
  await using stage = new StageProcess(["run", "--config", `${repoRoot}/config/stage.json`]);
  await stage.waitFor((line) => line.message.includes("listening on"));
  await using client = await FrameClient.connect(8801, "bson");
  await client.send({ message: "echo", text: "hi", n: 7 });
  assert.deepEqual(await client.next(), { message: "echo", text: "hi", n: 7 });
  const before = Date.now();
  await client.send({ message: "time" });
  const time = await client.next<{ message: string; time: Date; epochMs: number }>();
  assert.equal(time.message, "time");
  assert.ok(time.time instanceof Date);
  assert.ok(Math.abs(time.epochMs - before) < 5000);
  stage.signal("SIGINT");
  assert.equal(await stage.exitCode(), 0);
});

Deno.test("stage check validates the config and type-checks the scripts", async () => {
  const good = await runStage(["check", "--config", `${repoRoot}/config/stage.json`]);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /type-check ok/);
  const { dir, config } = await writeDeployment(CONFIG, {
    "start.ts": REFERENCE + "const n: number = 'not a number';\nlogger.info(String(n));\n",
  });
  try {
    const bad = await runStage(["check", "--config", config]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not assignable to type 'number'/);
    const syntaxOnly = await runStage(["check", "--transpile", "--config", config]);
    assert.equal(syntaxOnly.code, 0, "syntax is fine; types are not checked without deno");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage run exits 1 naming the address when a listen port is already in use", async () => {
  const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (holder.addr as Deno.NetAddr).port;
  const { dir, config } = await writeDeployment(CONFIG, { "start.ts": SERVER });
  try {
    const result = await runStage(["run", "--config", config, "--", String(port)]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, new RegExp(`cannot listen on tcp://127\\.0\\.0\\.1:${port}`));
  } finally {
    holder.close();
    await Deno.remove(dir, { recursive: true });
  }
});
