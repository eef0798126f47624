/**
 * NatsPeers over a real nats-server, with a ManualClock for the leases: other
 * machines' endpoints appear with their stages, state and load, go when their
 * lease runs out or they say goodbye; this machine's own are ignored.
 */
import assert from "node:assert/strict";
import { NatsLink } from "../../core/cluster/nats_link.ts";
import { NatsPeers } from "../../core/cluster/nats_peers.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { startNatsServer } from "../_helpers/nats_server.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const log = coreLogger("test");

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("NatsPeers: leases, goodbyes, load, deliveries; own machine ignored", async () => {
  await using server = await startNatsServer();
  const clock = new ManualClock();
  const link = (name: string) => NatsLink.connect({ servers: [server.url], name, log });
  await using linkA = await link("a");
  await using linkB = await link("b");
  await using linkC = await link("c");
  const gone: string[] = [];
  const received: string[] = [];
  const peers = (linkX: NatsLink, endpoint: string, node: string) =>
    NatsPeers.start({
      link: linkX,
      endpoint,
      node,
      clock,
      log,
      heartbeatMs: 1000,
      onMessage: (bytes) => received.push(`${endpoint}:${new TextDecoder().decode(bytes)}`),
      onGone: (endpoints) => gone.push(...endpoints),
      load: () => ({ p95Ms: 7, queued: 3 }),
    });
  const a = peers(linkA, "alpha/0", "alpha");
  const b = peers(linkB, "beta/0", "beta");
  const sibling = peers(linkC, "alpha/1", "alpha"); // same machine as a: the hub's business
  await Promise.all([linkA.flush(), linkB.flush(), linkC.flush()]);
  const info = (endpoint: string, node: string) => ({
    endpoint,
    node,
    stages: ["calc"],
    state: "ready" as const,
  });
  a.announce(info("alpha/0", "alpha"));
  b.announce(info("beta/0", "beta"));
  sibling.announce(info("alpha/1", "alpha"));
  await until("beta seen by alpha", () => a.has("beta/0"));
  await until("alpha seen by beta", () => b.has("alpha/0") && b.has("alpha/1"));
  assert.deepEqual(a.peers.map((p) => p.endpoint), ["beta/0"], "its own machine's are ignored");
  assert.deepEqual(a.peers[0]!.load, { p95Ms: 7, queued: 3 });

  b.send("alpha/0", new TextEncoder().encode("hello"));
  await until("delivery", () => received.length === 1);
  assert.deepEqual(received, ["alpha/0:hello"]);

  // A goodbye (lease 0): beta drops alpha/1 at once.
  sibling.close();
  await until("goodbye heard", () => !b.has("alpha/1"));
  // beta vanishes without a goodbye (its connection is gone first): alpha drops it when
  // its 3 s lease runs out.
  await linkB.close();
  b.close();
  clock.advance(2999);
  assert.ok(a.has("beta/0"), "still within its lease");
  clock.advance(1);
  assert.ok(!a.has("beta/0"), "lease over");
  assert.ok(gone.includes("beta/0") && gone.includes("alpha/1"));
  a.close();
});
