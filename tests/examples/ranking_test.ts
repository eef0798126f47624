/**
 * scripts/examples/ranking.ts as written: a leaderboard over a real index stage.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../core/config/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { repoRoot, startFixture } from "../_helpers/stage_fixture.ts";

Deno.test("examples/ranking: scores, top, me, near and quit over the index stage", async () => {
  // The example's own config: the index stage's database resolves next to the config file.
  const shipped = await loadConfig(join(repoRoot, "config/examples/ranking.json"), () => undefined);
  assert.equal(shipped.indexes.rank?.path, join(repoRoot, "config/examples/data/rank.db"));
  assert.equal(shipped.script.mains.ranking, "ranking");
  await using fixture = await startFixture({
    config: {
      "#startup": [["index+rank", "script+ranking"]],
      "index+rank": { path: "data/rank.db" },
      script: { "script+ranking": "ranking" },
    },
    scripts: {
      "ranking.ts": await Deno.readTextFile(join(repoRoot, "scripts/examples/ranking.ts")),
    },
    args: ["127.0.0.1:0", "weekly"],
  });
  await using client = await FrameClient.connect(fixture.port("", "ranking"), "json");
  const ask = async (message: Record<string, unknown>) => {
    await client.send(message);
    return await client.next();
  };
  assert.deepEqual(await ask({ message: "score", user: "ann", points: 50 }), {
    message: "score",
    user: "ann",
    rank: 1,
    points: 50,
  });
  await ask({ message: "score", user: "bob", points: 80 });
  await new Promise((resolve) => setTimeout(resolve, 5)); // cy reaches 80 later than bob
  assert.equal((await ask({ message: "score", user: "cy", points: 80 })).rank, 2);
  await ask({ message: "score", user: "dan", points: 10 });
  assert.deepEqual(await ask({ message: "score", user: "dan", points: 60 }), {
    message: "score",
    user: "dan",
    rank: 3,
    points: 60,
    previous: 4,
  });
  assert.deepEqual(await ask({ message: "top", count: 3 }), {
    message: "top",
    total: 4,
    players: [
      { rank: 1, user: "bob", points: 80 },
      { rank: 2, user: "cy", points: 80 },
      { rank: 3, user: "dan", points: 60 },
    ],
  });
  assert.deepEqual(await ask({ message: "me", user: "cy" }), {
    message: "me",
    user: "cy",
    rank: 2,
    points: 80,
    total: 4,
    ahead: { user: "bob", gap: 0 },
    behind: { user: "dan", gap: 20 },
  });
  assert.deepEqual(
    ((await ask({ message: "near", user: "ann" })).players as { user: string }[]).map((p) =>
      p.user
    ),
    ["cy", "dan", "ann"],
  );
  assert.deepEqual(await ask({ message: "quit", user: "bob" }), {
    message: "quit",
    user: "bob",
    removed: true,
  });
  assert.equal((await ask({ message: "me", user: "cy" })).rank, 1);
  assert.deepEqual(await ask({ message: "me", user: "zed" }), {
    message: "me",
    user: "zed",
    rank: null,
    points: null,
    total: 3,
  });
  const bad = await ask({ message: "score", points: 5 });
  assert.equal(bad.message, "error");
  assert.match(String(bad.reason), /id must be a non-empty string/);
});
