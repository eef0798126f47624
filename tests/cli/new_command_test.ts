/**
 * `stage new <dir>`: the scaffolded project checks, starts and answers; `stage check`
 * names the file and line of a type error.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { repoRoot } from "../_helpers/stage_fixture.ts";
import { freePort, runStage, StageProcess } from "../_helpers/stage_process.ts";
import { parseCli, UsageError } from "../../core/cli/mod.ts";
import { scaffoldFiles } from "../../core/cli/new_command.ts";

const FILES = [
  "config/stage.json",
  "deno.json",
  "scripts/start.ts",
  "tests/start_test.ts",
  "types/stage.d.ts",
];

/** Runs `stage new` into a fresh temp folder; returns the project folder. */
async function scaffold(): Promise<{ root: string; project: string }> {
  const root = await Deno.makeTempDir({ prefix: "stage-new-" });
  const project = `${root}/app`;
  const result = await runStage(["new", project]);
  assert.equal(result.code, 0, result.stderr);
  return { root, project };
}

Deno.test("parseCli: new takes exactly one directory", () => {
  assert.deepEqual(parseCli(["new", "app"]), { command: "new", dir: "app" });
  assert.throws(() => parseCli(["new"]), /stage new needs a directory/);
  assert.throws(() => parseCli(["new", "--config", "x"]), /Unknown option "--config" for "new"/);
  assert.throws(() => parseCli(["new", "a", "b"]), UsageError);
});

Deno.test("scaffoldFiles: the start script references the copied declarations and reads its port", () => {
  const files = scaffoldFiles("// globals\n");
  assert.deepEqual(Object.keys(files).sort(), FILES);
  assert.equal(files["types/stage.d.ts"], "// globals\n");
  const start = files["scripts/start.ts"]!;
  assert.ok(start.startsWith('/// <reference types="../types/stage.d.ts" />\n'));
  assert.match(start, /process\.args\[0\] \?\? "8801"/);
  assert.match(start, /tcp:\/\/127\.0\.0\.1:\$\{port\}\?json/);
  const config = JSON.parse(files["config/stage.json"]!);
  assert.deepEqual(config["#startup"], [["script+start"]]);
  assert.deepEqual(config.script["%package"], ["../scripts"]);
  const denoJson = JSON.parse(files["deno.json"]!);
  assert.match(denoJson.tasks.check, /deno check scripts\//);
  assert.match(denoJson.tasks.test, /^deno test .*tests\//);
  assert.match(
    files["tests/start_test.ts"]!,
    /"run", "--single", "--config", "config\/stage.json"/,
  );
});

Deno.test("stage new writes the project, a copy of the globals; stage check passes on it", async () => {
  const { root, project } = await scaffold();
  try {
    for (const file of FILES) {
      assert.ok((await Deno.stat(`${project}/${file}`)).isFile, `${file} exists`);
    }
    assert.equal(
      await Deno.readTextFile(`${project}/types/stage.d.ts`),
      await Deno.readTextFile(`${repoRoot}/core/api/globals.d.ts`),
    );
    const check = await runStage(["check", "--config", `${project}/config/stage.json`]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /1 scripts: type-check ok/);
    assert.equal(check.stderr, "");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the scaffolded stage starts with stage run --single on the port given after -- and answers", async () => {
  const { root, project } = await scaffold();
  const port = freePort();
  try {
    await using stage = new StageProcess([
      "run",
      "--single",
      "--config",
      `${project}/config/stage.json`,
      "--",
      String(port),
    ]);
    await stage.waitFor((line) => line.message.includes("listening on"));
    await using client = await FrameClient.connect(port, "json");
    await client.send({ message: "hello", name: "Ada" }, { message: "echo", n: 7 }, {
      message: "hello",
    });
    assert.deepEqual(await client.next(), { message: "hello", text: "Hello, Ada!", greeted: 1 });
    assert.deepEqual(await client.next(), { message: "echo", n: 7 });
    assert.deepEqual(await client.next(), {
      message: "hello",
      text: "Hello, stranger!",
      greeted: 2,
    });
    stage.signal("SIGTERM");
    assert.equal(await stage.exitCode(), 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stage new refuses a non-empty directory (exit 2, naming it) and leaves it untouched", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage-new-" });
  try {
    await Deno.writeTextFile(`${root}/keep.txt`, "mine");
    const result = await runStage(["new", root]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, new RegExp(`cannot create a project in ${root}: .*not empty`));
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(root))).map((entry) => entry.name),
      ["keep.txt"],
    );
    const missing = await runStage(["new"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /stage new needs a directory/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("stage check names the script file, line and column of a type error", async () => {
  const { root, project } = await scaffold();
  try {
    const start = `${project}/scripts/start.ts`;
    const source = await Deno.readTextFile(start);
    // Line 2 of the script becomes a type error at column 7.
    const lines = source.split("\n");
    lines.splice(1, 0, 'const n: number = "not a number";');
    await Deno.writeTextFile(start, lines.join("\n"));
    const result = await runStage(["check", "--config", `${project}/config/stage.json`]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not assignable to type 'number'/);
    assert.match(result.stderr, new RegExp(`${start.replaceAll(".", "\\.")}:2:7`));
    assert.ok(!result.stderr.includes("\u001b["), "no colour codes in captured output");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
