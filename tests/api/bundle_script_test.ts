/// <reference types="../../core/api/globals.d.ts" />
/**
 * The `bundle` global inside real workers: a stage script uses bundle.proxy,
 * json, bson, random and viewof in a socket handler, with the worker's
 * `%permissions` deciding which files it may read and write. Also checks that
 * the ambient types match the implementation's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Bundle, createBundle } from "../../core/api/bundle.ts";
import { random, type RandomState, seedRandom } from "../../core/api/bundle_random.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

/** True only when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

Deno.test("globals.d.ts declares bundle with the implementation's random state and codecs", () => {
  const checks = {
    state: true satisfies Same<Stage.RandomState, RandomState>,
    json: true satisfies Same<Stage.Bundle["json"]["encode"], Bundle["json"]["encode"]>,
    bson: true satisfies Same<Stage.Bundle["bson"]["encode"], Bundle["bson"]["encode"]>,
    seed: true satisfies Same<Stage.BundleRandom["seed"], Bundle["random"]["seed"]>,
  };
  assert.ok(Object.values(checks).every((same) => same));
  // A script's view of the global compiles against the declarations.
  const use = (b: Stage.Bundle) => b.viewof<{ hp: number }>("x", "hp:i").get(0).hp;
  assert.equal(typeof use, "function");
});

const SCRIPT = REFERENCE + `
const dir = process.args[0]!;

function run(data: Record<string, any>): unknown {
  switch (data.op) {
    case "roll": {
      const state = bundle.random.seed(data.seed);
      return Array.from({ length: 5 }, () => bundle.random(state, 1, 1000));
    }
    case "watch": {
      const seen: unknown[] = [];
      const hero = bundle.proxy({ hp: 50, name: "Ada" }, {
        hp: [10, 20, 30, (_p, edges, _key, value) => seen.push({ edges, value })],
        name: (_p, _key, value, previous) => seen.push({ name: value, previous }),
      });
      hero.hp = 25;
      hero.hp = 22;
      hero.hp = 5;
      hero.name = "Grace";
      return { seen, json: bundle.json.encode(hero) };
    }
    case "codecs": {
      const bytes = bundle.bson.encode({ n: 7, list: [1, 2] });
      return { bson: bundle.bson.decode(bytes), length: bytes.length, json: bundle.json.decode("[1,true]") };
    }
    case "store": {
      using view = bundle.viewof(dir + "/data/heroes.dat", "name:c10 hp:i", 0, 4);
      view.set(data.row, { name: data.name, hp: data.hp });
      view.commit();
      return { row: view.get(data.row), writable: view.writable };
    }
    case "readonly": {
      using view = bundle.viewof(dir + "/ro/table.dat", "i");
      const first = view.get(0);
      view.set(0, [2]);
      return first;
    }
    case "thread": // a shipped function: bundle is a platform global, not a captured variable
      return new Promise((resolve) =>
        thread.new((seed: number) => bundle.random(bundle.random.seed(seed), 1, 1000), data.seed)
          .waitfor((value, done) => done && resolve(value))
      );
    case "secret":
      bundle.viewof(dir + "/secret.dat", "i");
      return "opened";
    case "relative": { // resolves against the config file's folder, as %permissions does
      using view = bundle.viewof("rel.dat", "i", 0, 1);
      view.set(0, [7]);
      view.commit();
      return view.get(0);
    }
  }
  return "unknown op";
}

broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  try {
    socket.commit({ ok: await run(data) });
  } catch (error) {
    socket.commit({ error: (error as Error).name + ": " + (error as Error).message });
  }
});
`;

Deno.test("a stage script uses bundle.proxy, json, bson, random and viewof in a handler", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage-bundle-" });
  try {
    await Deno.mkdir(join(dir, "data"));
    await Deno.mkdir(join(dir, "ro"));
    const table = new Uint8Array(4);
    new DataView(table.buffer).setInt32(0, 41, true);
    await Deno.writeFile(join(dir, "ro/table.dat"), table);
    await Deno.writeFile(join(dir, "secret.dat"), table);
    await using fixture = await startFixture({
      scripts: { "start.ts": SCRIPT },
      args: [dir],
      config: {
        script: {
          "%permissions": {
            read: [join(dir, "data"), join(dir, "ro"), "rel.dat"],
            write: [join(dir, "data"), "rel.dat"],
          },
        },
      },
    });
    await using client = await FrameClient.connect(fixture.port(), "json");
    const ask = async (data: Record<string, unknown>) => {
      await client.send(data);
      return await client.next<{ ok?: unknown; error?: string }>();
    };

    const local = (seed: number) => {
      const state: RandomState = seedRandom(seed);
      return Array.from({ length: 5 }, () => random(state, 1, 1000));
    };
    assert.deepEqual(
      await ask({ op: "roll", seed: 42 }),
      { ok: local(42) },
      "same seed, same sequence",
    );

    assert.deepEqual(await ask({ op: "watch" }), {
      ok: {
        seen: [
          { edges: [30], value: 25 },
          { edges: [20, 10], value: 5 },
          { name: "Grace", previous: "Ada" },
        ],
        json: '{"hp":5,"name":"Grace"}',
      },
    });

    assert.deepEqual(await ask({ op: "codecs" }), {
      ok: {
        bson: { n: 7, list: [1, 2] },
        length: createBundle().bson.encode({ n: 7, list: [1, 2] }).length,
        json: [1, true],
      },
    });

    assert.deepEqual(await ask({ op: "store", row: 2, name: "Ada", hp: 120 }), {
      ok: { row: { name: "Ada", hp: 120 }, writable: true },
    });
    const stored = await Deno.readFile(join(dir, "data/heroes.dat"));
    assert.equal(stored.length, 42, "rows 0..2 of 14 bytes");
    assert.equal(new TextDecoder().decode(stored.subarray(28, 31)), "Ada");
    assert.equal(new DataView(stored.buffer).getInt32(38, true), 120);

    const readonly = await ask({ op: "readonly" });
    assert.match(
      readonly.error ?? "",
      /^FilePermissionError: Cannot write ".*ro\/table.dat": this worker has no write permission/,
    );

    const secret = await ask({ op: "secret" });
    assert.match(
      secret.error ?? "",
      /^FilePermissionError: Cannot read ".*secret.dat": this worker has no read permission/,
    );
    assert.deepEqual(await ask({ op: "relative" }), { ok: [7] });
    const written = await Deno.readFile(join(fixture.dir, "rel.dat"));
    assert.equal(new DataView(written.buffer).getInt32(0, true), 7, "next to the config file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
