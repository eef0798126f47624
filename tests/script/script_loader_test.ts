/**
 * ScriptLoader: the package search path, both import paths (native file URL and
 * transpile + data: URL), hot reload by size/mtime and fail-over positions.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseScriptSpec, ScriptLoader, ScriptNotFoundError } from "../../core/script/mod.ts";
import type { Clock } from "../../core/time/mod.ts";

function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  return {
    now: () => now,
    wallNow: () => now,
    setTimeout: () => ({ cancel() {} }),
    setInterval: () => ({ cancel() {} }),
    advance(ms) {
      now += ms;
    },
  };
}

async function packages(): Promise<{ root: string; primary: string; rollback: string }> {
  const root = await Deno.makeTempDir({ prefix: "stage-loader-" });
  const primary = join(root, "scripts");
  const rollback = join(root, "rollback");
  await Deno.mkdir(primary);
  await Deno.mkdir(rollback);
  return { root, primary, rollback };
}

/** Writes a file and moves its mtime forward so a same-size edit is still seen. */
async function write(path: string, text: string, mtimeSeconds: number): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.utime(path, mtimeSeconds, mtimeSeconds);
}

for (const transpile of [false, true]) {
  const mode = transpile ? "transpile + data: URL" : "native import";

  Deno.test(`ScriptLoader (${mode}) loads a default export, a module and a named export`, async () => {
    const { root, primary } = await packages();
    try {
      await write(
        join(primary, "tools.ts"),
        "export const twice = (n: number): number => n * 2;\nexport default function main(): string { return 'main'; }\n",
        1000,
      );
      await write(
        join(primary, "plain.ts"),
        "interface T { a: number }\nexport const value: T = { a: 1 };\n",
        1000,
      );
      const loader = new ScriptLoader({
        packages: [primary],
        reloadSeconds: 30,
        transpile,
        clock: manualClock(),
      });
      const main = await loader.load("tools");
      assert.equal((main.value as () => string)(), "main");
      assert.deepEqual(main.info.slice(0, 2), [0, join(primary, "tools.ts")]);
      const twice = (await loader.load("tools+twice")).value as (n: number) => number;
      assert.equal(twice(21), 42);
      const plain = (await loader.require("plain")).value as { value: { a: number } };
      assert.deepEqual(plain.value, { a: 1 });
      await assert.rejects(loader.load("tools+missing"), /no export named "missing"/);
      await assert.rejects(loader.load("nothing"), ScriptNotFoundError);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  Deno.test(`ScriptLoader (${mode}) reloads a changed position-0 file after reloadSeconds; require never reloads`, async () => {
    const { root, primary } = await packages();
    try {
      const file = join(primary, "greeting.ts");
      await write(file, "export default 'hello';\n", 1000);
      const clock = manualClock();
      const loader = new ScriptLoader({ packages: [primary], reloadSeconds: 30, transpile, clock });
      assert.equal((await loader.load("greeting")).value, "hello");
      await write(file, "export default 'howdy';\n", 2000); // same size, new mtime
      assert.equal((await loader.load("greeting")).value, "hello", "checked before reloadSeconds");
      clock.advance(30_000);
      assert.equal((await loader.load("greeting")).value, "howdy");
      assert.equal((await loader.require("greeting")).value, "howdy");
      await write(file, "export default 'changed again';\n", 3000);
      clock.advance(30_000);
      assert.equal((await loader.require("greeting")).value, "howdy", "require never reloads");
      assert.equal((await loader.load("greeting")).value, "changed again");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  Deno.test(`ScriptLoader (${mode}) falls back to a later package and re-checks it on every call`, async () => {
    const { root, primary, rollback } = await packages();
    try {
      await write(join(rollback, "feature.ts"), "export default 'rollback copy';\n", 1000);
      const loader = new ScriptLoader({
        packages: [primary, rollback],
        reloadSeconds: 3600,
        transpile,
        clock: manualClock(),
      });
      const first = await loader.load("feature");
      assert.equal(first.value, "rollback copy");
      assert.equal(first.info[0], 1);
      await write(join(primary, "feature.ts"), "export default 'primary copy';\n", 1000);
      const second = await loader.load("feature");
      assert.equal(second.value, "primary copy");
      assert.equal(second.info[0], 0);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  Deno.test(`ScriptLoader (${mode}) keeps the last good version when an edit does not load`, async () => {
    const { root, primary } = await packages();
    try {
      const file = join(primary, "fragile.ts");
      await write(file, "export default 1;\n", 1000);
      const failures: string[] = [];
      const loader = new ScriptLoader({
        packages: [primary],
        reloadSeconds: 0,
        transpile,
        clock: manualClock(),
        onReloadError: (path) => failures.push(path),
      });
      assert.equal((await loader.load("fragile")).value, 1);
      await write(file, "export default = ;;; {\n", 2000);
      assert.equal((await loader.load("fragile")).value, 1, "the last good version serves");
      assert.equal((await loader.load("fragile")).value, 1);
      assert.deepEqual(failures, [file], "reported once per broken version");
      await write(file, "export default 3;\n", 3000);
      assert.equal((await loader.load("fragile")).value, 3);
      await Deno.writeTextFile(join(primary, "broken.ts"), "export default = ;");
      await assert.rejects(loader.load("broken"), "a first load that fails rejects");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}

Deno.test("parseScriptSpec rejects names that leave the package path or are empty", () => {
  assert.deepEqual(parseScriptSpec("a/b+c"), { file: "a/b", exportName: "c" });
  for (const bad of ["", "+x", "a+", "../etc/passwd", "/abs/path", "a/../../b"]) {
    assert.throws(() => parseScriptSpec(bad), TypeError, bad);
  }
});
