/**
 * The README's guide for script authors ("## Writing a stage script") is runnable
 * as written: every `ts` block in it is a complete script named on its first line
 * (`// scripts/<name>.ts`), type-checked against core/api/globals.d.ts with the
 * compiler settings `stage new` scaffolds; every `jsonc` block is a config that
 * validates; and hello.ts, front.ts + calc.ts and orders.ts run against a real
 * stage and a TCP client.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { scaffoldFiles } from "../core/cli/new_command.ts";
import { loadConfig } from "../core/config/mod.ts";
import { FrameClient } from "./_helpers/frame_client.ts";
import { poll } from "./_helpers/poll.ts";
import { repoRoot, startFixture } from "./_helpers/stage_fixture.ts";

const GUIDE_HEADING = "## Writing a stage script";
const SCRIPT_NAME = /^\/\/ scripts\/([a-z_]+\.ts)\b/;

/** A fenced code block of the guide. */
interface Block {
  /** The info string (`ts`, `jsonc`, …). */
  info: string;
  text: string;
  /** Line number in README.md of the opening fence. */
  line: number;
}

/** The guide section of README.md and the line it starts on. */
async function guide(): Promise<{ text: string; line: number }> {
  const readme = await Deno.readTextFile(join(repoRoot, "README.md"));
  const start = readme.indexOf(`\n${GUIDE_HEADING}\n`);
  assert.ok(start >= 0, `README.md has no "${GUIDE_HEADING}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return {
    text: readme.slice(start + 1, end < 0 ? undefined : end),
    line: readme.slice(0, start + 1).split("\n").length,
  };
}

/** Fenced blocks, including those indented inside list items. */
function codeBlocks(markdown: string, firstLine: number): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\S*)/.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^ *```\s*$/.test(lines[j]!); j++) {
      body.push(lines[j]!.slice(Math.min(indent, /^ */.exec(lines[j]!)![0].length)));
    }
    assert.ok(j < lines.length, `unclosed code block at README.md:${firstLine + i}`);
    blocks.push({ info: open[2]!, text: body.join("\n") + "\n", line: firstLine + i });
    i = j;
  }
  return blocks;
}

/** The guide's scripts by file name. */
async function guideScripts(): Promise<Map<string, Block>> {
  const { text, line } = await guide();
  const scripts = new Map<string, Block>();
  for (const block of codeBlocks(text, line)) {
    if (block.info !== "ts") continue;
    const name = SCRIPT_NAME.exec(block.text)?.[1];
    assert.ok(
      name !== undefined,
      `README.md:${block.line}: a ts block of the guide must be a script whose first line is ` +
        `"// scripts/<name>.ts"; found ${JSON.stringify(block.text.split("\n")[0])}`,
    );
    assert.ok(!scripts.has(name), `README.md:${block.line}: a second script named ${name}`);
    scripts.set(name, block);
  }
  return scripts;
}

/** The guide's config block that contains `marker`. */
async function guideConfig(marker: string): Promise<Record<string, unknown>> {
  const { text, line } = await guide();
  const found = codeBlocks(text, line).filter((b) => b.info === "jsonc" && b.text.includes(marker));
  assert.equal(found.length, 1, `one jsonc block of the guide mentions ${marker}`);
  const dir = await Deno.makeTempDir({ prefix: "stage-readme-config-" });
  try {
    await Deno.writeTextFile(join(dir, "stage.json"), found[0]!.text);
    const config = await loadConfig(join(dir, "stage.json"), () => "x");
    const raw = structuredClone(config.raw) as Record<string, unknown>;
    // The fixture puts the scripts in its own folder.
    delete (raw.script as Record<string, unknown>)["%package"];
    return raw;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `deno check` over `files` in `dir`; resolves with its exit code and output. */
async function denoCheck(dir: string, files: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", ...files],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

/** A project folder like `stage new` writes, with the declarations listed in deno.json. */
async function checkProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stage-readme-check-" });
  const files = scaffoldFiles(await Deno.readTextFile(join(repoRoot, "core/api/globals.d.ts")));
  const denoJson = JSON.parse(files["deno.json"]!) as { compilerOptions: Record<string, unknown> };
  // Scripts may leave out the reference line (the guide says how): list the file once.
  denoJson.compilerOptions.types = ["./types/stage.d.ts"];
  await Deno.mkdir(join(dir, "types"));
  await Deno.mkdir(join(dir, "scripts"));
  await Deno.writeTextFile(join(dir, "types/stage.d.ts"), files["types/stage.d.ts"]!);
  await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(denoJson, null, 2));
  return dir;
}

Deno.test("README guide: every ts block is a named script and type-checks against globals.d.ts", async () => {
  const scripts = await guideScripts();
  assert.ok(scripts.size >= 15, `expected the guide's scripts, found ${scripts.size}`);
  const dir = await checkProject();
  try {
    for (const [name, block] of scripts) {
      await Deno.writeTextFile(join(dir, "scripts", name), block.text);
    }
    const checked = await denoCheck(dir, [...scripts.keys()].map((name) => `scripts/${name}`));
    assert.equal(
      checked.code,
      0,
      `the guide's scripts do not type-check (README.md lines: ${
        [...scripts].map(([name, block]) => `${name} ${block.line}`).join(", ")
      }):\n${checked.output}`,
    );
    // The same project rejects a script that misuses the API: the check above can fail.
    await Deno.writeTextFile(join(dir, "scripts/misuse.ts"), 'stage.submit(1, "x", 2).then();\n');
    const misuse = await denoCheck(dir, ["scripts/misuse.ts"]);
    assert.notEqual(misuse.code, 0, "a script calling .then() on void type-checked");
    assert.match(misuse.output, /then/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README guide: every jsonc block is a stage.json that validates", async () => {
  const { text, line } = await guide();
  const configs = codeBlocks(text, line).filter((block) => block.info === "jsonc");
  assert.ok(configs.length >= 4, `expected the guide's configs, found ${configs.length}`);
  const dir = await Deno.makeTempDir({ prefix: "stage-readme-config-" });
  try {
    await Deno.mkdir(join(dir, "config"));
    await Deno.mkdir(join(dir, "scripts"));
    for (const block of configs) {
      await Deno.writeTextFile(join(dir, "config/stage.json"), block.text);
      try {
        await loadConfig(join(dir, "config/stage.json"), () => "x");
      } catch (error) {
        assert.fail(`README.md:${block.line}: ${(error as Error).message}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README hello.ts greets over JSON TCP and keeps the name in a socket field", async () => {
  const scripts = await guideScripts();
  await using fixture = await startFixture({
    config: await guideConfig('"script+hello"'),
    scripts: { "hello.ts": scripts.get("hello.ts")!.text },
    args: ["127.0.0.1:0"],
  });
  await using client = await FrameClient.connect(fixture.port("", "hello"), "json");
  await client.send({ name: "Ada" });
  assert.deepEqual(await client.next(), { message: "hello", text: "Hello, Ada!" });
  await client.send({});
  assert.deepEqual(await client.next(), { message: "hello", text: "Hello, Ada!" });
});

for (const transpile of [false, true]) {
  Deno.test(
    `README front.ts and calc.ts: requests, groups, by-sender ids, early replies, functions, errors (${
      transpile ? "transpiled, as in a compiled binary" : "native imports"
    })`,
    async () => {
      const scripts = await guideScripts();
      await using fixture = await startFixture({
        config: await guideConfig('"#startup": [["script+front", "script+calc"]]'),
        scripts: {
          "front.ts": scripts.get("front.ts")!.text,
          "calc.ts": scripts.get("calc.ts")!.text,
        },
        args: ["127.0.0.1:0"],
        transpile,
      });
      await using client = await FrameClient.connect(fixture.port("", "front"), "json");
      const ask = async (request: Record<string, unknown>) => {
        await client.send(request);
        return await client.next();
      };
      assert.deepEqual(await ask({ op: "add", a: 2, b: 3 }), { reply: 5 });
      assert.deepEqual(await ask({ op: "square", x: 4 }), { reply: 16 });
      assert.deepEqual(await ask({ op: "label", text: "hi" }), { reply: "[calc] hi" });
      assert.deepEqual(await ask({ op: "hello" }), { reply: "front said hi (front:hello)" });
      assert.deepEqual(await ask({ op: "job" }), { reply: "accepted report" });
      assert.deepEqual(await ask({ op: "shout" }), { reply: "HI" });
      assert.deepEqual(await ask({ op: "later", a: 1, b: 2 }), { later: 3 });
      assert.deepEqual(await ask({ op: "math.root" }), {
        error: "RangeError",
        message: 'calc cannot do "math.root"',
      });
      assert.deepEqual(await ask({ op: "nope" }), {
        error: "RangeError",
        message: 'calc has no handler for "nope"',
      });
    },
  );
}

Deno.test("README orders.ts: per-user submit keys add up in a shared variable; a thread reports progress", async () => {
  const scripts = await guideScripts();
  await using fixture = await startFixture({
    config: { "#startup": [["script+orders"]], script: { "script+orders": "orders" } },
    scripts: { "orders.ts": scripts.get("orders.ts")!.text },
    args: ["127.0.0.1:0"],
  });
  await using client = await FrameClient.connect(fixture.port("", "orders"), "json");
  const orders = [["ann", 5], ["bob", 1], ["ann", 7], ["cy", 2], ["bob", 10]] as const;
  for (const [user, amount] of orders) {
    await client.send({ op: "order", user, amount });
    assert.deepEqual(await client.next(), { queued: true });
  }
  const totals = await poll(
    "the orders' totals",
    async () => {
      await client.send({ op: "totals" });
      return await client.next();
    },
    (value) => value.ann === 12 && value.bob === 11 && value.cy === 2,
    5000,
  );
  assert.deepEqual(totals, { ann: 12, bob: 11, cy: 2 });
  await client.send({ op: "sum", n: 3000 });
  assert.deepEqual(await client.next(), { sum: 4_501_500, steps: [1000, 2000, 3000] });
});
