/**
 * scripts/examples/login.ts as written: 200 simultaneous logins over 200
 * connections, behind a ticket category of 10.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../core/config/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { repoRoot, startFixture } from "../_helpers/stage_fixture.ts";

const LOGINS = 200;

Deno.test("examples/login: 200 simultaneous logins all complete, at most 10 at once", async () => {
  // The example's own config: a ticket stage next to it, category "login" limited to 10.
  const shipped = await loadConfig(join(repoRoot, "config/examples/login.json"), () => undefined);
  assert.equal(shipped.tickets.ticket?.categories.login, 10);
  assert.deepEqual(shipped.startup[0]?.map((ref) => `${ref.kind}+${ref.id}`), [
    "script+login",
    "=ticket+ticket",
  ]);
  await using fixture = await startFixture({
    config: {
      "#startup": [["script+login", "=ticket+ticket"]],
      "=ticket+ticket": [1, { login: 10 }],
      script: { "script+login": "login" },
    },
    scripts: {
      "login.ts": await Deno.readTextFile(join(repoRoot, "scripts/examples/login.ts")),
    },
    args: ["127.0.0.1:0"],
  });
  const port = fixture.port("", "login");
  const clients = await Promise.all(
    Array.from({ length: LOGINS }, () => FrameClient.connect(port, "json")),
  );
  try {
    await Promise.all(clients.map((client, i) => client.send({ message: "login", user: `u${i}` })));
    const replies = await Promise.all(
      clients.map((client) => client.next<{ ok: boolean; profile: { user: string } }>(30_000)),
    );
    assert.deepEqual(replies.map((r) => r.ok), Array(LOGINS).fill(true));
    assert.deepEqual(replies.map((r) => r.profile.user), clients.map((_, i) => `u${i}`));
    await clients[0]!.send({ message: "stats" });
    const stats = await clients[0]!.next<{ max: number; done: number; now: number }>();
    assert.equal(stats.done, LOGINS);
    assert.equal(stats.now, 0);
    assert.ok(stats.max <= 10, `at most 10 logins at once, saw ${stats.max}`);
    assert.equal(stats.max, 10, "the ticket lets 10 run at once");
  } finally {
    for (const client of clients) client.close();
  }
});
