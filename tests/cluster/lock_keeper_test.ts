/**
 * ClusterLocks and LockKeeper over an in-memory network the test delivers by
 * hand (messages queue until `flush()`), with a ManualClock: the cases that
 * need a precise interleaving — a grant from a keeper the request has moved
 * away from, a grant for a cancelled wait, a process that leaves.
 */
import assert from "node:assert/strict";
import type { EndpointInfo } from "../../core/cluster/bus_frames.ts";
import { ClusterLocks } from "../../core/cluster/cluster_locks.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { packValues, unpackValues } from "../../core/message/mod.ts";
import { decodeSignalHeader, type SignalHeader } from "../../core/pool/wire.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const log = coreLogger("test");

/**
 * Three processes a, b, c; each sees the members the test last showed it
 * (oldest first); every send waits for `flush()`.
 */
function network(clock: ManualClock) {
  const views = new Map<string, EndpointInfo[]>();
  const queue: { to: string; message: Uint8Array }[] = [];
  const grants: string[] = [];
  const processes = new Map<string, ClusterLocks>();
  const down = new Set<string>();
  for (const endpoint of ["a", "b", "c"]) {
    processes.set(
      endpoint,
      new ClusterLocks({
        endpoint,
        clock,
        log,
        members: () => views.get(endpoint) ?? [],
        send: (to, message) => {
          if (down.has(to)) return `${to} is gone`;
          queue.push({ to, message });
          return undefined;
        },
        deliver: (header, body) => {
          const values = unpackValues(decodeSignalHeader(body).values);
          grants.push(`${endpoint}/${header.worker}:${header.message}:${values.join()}`);
        },
      }),
    );
  }
  const at = (endpoint: string) => processes.get(endpoint)!;
  /** Shows `endpoint` these members (oldest first). */
  const see = (endpoint: string, ...alive: string[]) => {
    views.set(
      endpoint,
      alive.map((name) => ({
        endpoint: name,
        node: name,
        stages: ["s"],
        state: "ready",
        lockKeeperSince: name.charCodeAt(0),
      })),
    );
    processes.get(endpoint)?.refresh();
  };
  return {
    at,
    grants,
    see,
    /** Shows every live process the same members. */
    members(...alive: string[]) {
      for (const endpoint of processes.keys()) see(endpoint, ...alive);
    },
    /** Delivers every queued message, and those they cause. */
    flush() {
      while (queue.length > 0) {
        const { to, message } = queue.shift()!;
        const { header, values } = decodeSignalHeader(message);
        processes.get(to)?.arrived(header, values);
      }
    },
    lock(endpoint: string, op: "acquire" | "release", worker: number, callback = "cb") {
      const header: SignalHeader = {
        stage: "s",
        scope: "one",
        message: callback,
        from: { stage: "s", worker },
        lock: { op, name: "L", callback },
      };
      at(endpoint).request(header, packValues([`${endpoint}${worker}`]).bytes);
    },
    /** The process dies: sends to it fail from now on. */
    kill(endpoint: string) {
      down.add(endpoint);
      at(endpoint).close();
      processes.delete(endpoint);
    },
    close() {
      for (const process of processes.values()) process.close();
    },
  };
}

Deno.test("ClusterLocks: a grant from a keeper the request moved away from is given back, not run", () => {
  const net = network(new ManualClock());
  net.members("a", "b", "c");
  assert.equal(net.at("c").keeper, "a");
  net.lock("b", "acquire", 0);
  net.flush();
  net.lock("c", "acquire", 0);
  net.flush();
  assert.deepEqual(net.grants, ["b/0:cb:b0"]);
  assert.equal(net.at("a").inspect("L")?.waiting, 1);

  // Only c believes a is gone (views differ for a moment): it queues at b instead, which
  // does not keep the locks in its own view yet and keeps the request for when it does.
  net.see("c", "b", "c");
  assert.equal(net.at("c").keeper, "b");
  // Meanwhile a (alive) ends b's turn and grants c's old request: c gives it back.
  net.lock("b", "release", 0);
  net.flush();
  assert.deepEqual(net.grants, ["b/0:cb:b0"], "the stale grant did not run c's callback");
  assert.equal(net.at("a").inspect("L")?.holder, undefined, "c gave the turn back at once");
  assert.equal(net.at("b").inspect("L"), undefined, "b keeps no locks");
  net.close();
});

Deno.test("ClusterLocks: a new keeper takes requests sent before it saw the change, after a grace, once each", () => {
  const clock = new ManualClock();
  const net = network(clock);
  net.members("a", "b", "c");
  net.lock("a", "acquire", 0);
  net.lock("c", "acquire", 0);
  net.lock("c", "acquire", 1);
  net.lock("b", "acquire", 0);
  net.flush();
  assert.equal(net.at("a").inspect("L")?.waiting, 3);

  // a dies. c sees it first: its requests reach b before b sees the change.
  net.kill("a");
  net.see("c", "b", "c");
  net.flush();
  net.see("b", "b", "c");
  assert.equal(net.at("b").keeper, "b");
  net.flush();
  assert.deepEqual(net.grants, ["a/0:cb:a0"], "no turn during the takeover grace");
  clock.advance(100);
  net.flush();
  assert.deepEqual(net.grants, ["a/0:cb:a0", "c/0:cb:c0"], "c's requests first: they came first");
  assert.equal(net.at("b").inspect("L")?.waiting, 2, "every waiter queued once");
  net.lock("c", "release", 0);
  net.flush();
  net.lock("c", "release", 1);
  net.flush();
  assert.deepEqual(net.grants.slice(2), ["c/1:cb:c1", "b/0:cb:b0"]);
  net.close();
});

Deno.test("ClusterLocks: a grant for a wait its caller cancelled is given back", () => {
  const net = network(new ManualClock());
  net.members("a", "b");
  net.lock("b", "acquire", 0);
  net.flush();
  net.lock("b", "acquire", 1);
  net.flush();
  // b/1 gives up while waiting, but the keeper's grant crosses its release on the way.
  net.lock("b", "release", 0); // b/0's turn ends: the keeper grants b/1 (queued)
  net.lock("b", "release", 1, "cb"); // b/1 cancels before seeing it
  net.flush();
  assert.deepEqual(net.grants, ["b/0:cb:b0"], "the cancelled wait's callback never ran");
  assert.equal(net.at("a").inspect("L")?.holder, undefined, "the turn went back to the keeper");
  net.close();
});

Deno.test("ClusterLocks: a repeated grant (a re-send crossed the first one) is given back", () => {
  const clock = new ManualClock();
  const net = network(clock);
  net.members("a", "b");
  net.lock("a", "acquire", 0);
  net.lock("b", "acquire", 0);
  net.flush();
  net.lock("a", "release", 0); // b's turn: its grant is on the way...
  clock.advance(1000); // ...when b sends its waiting request again
  net.flush();
  assert.deepEqual(net.grants, ["a/0:cb:a0", "b/0:cb:b0"], "b's callback ran once");
  assert.equal(net.at("a").inspect("L")?.holder, undefined, "the repeat's turn went back");
  assert.equal(net.at("a").inspect("L")?.waiting, 0);
  net.close();
});

Deno.test("LockKeeper: a process that leaves loses its holds and waits at once", () => {
  const net = network(new ManualClock());
  net.members("a", "b", "c");
  net.lock("b", "acquire", 0);
  net.lock("b", "acquire", 1);
  net.lock("c", "acquire", 0);
  net.flush();
  assert.equal(net.at("a").inspect("L")?.waiting, 2);
  net.kill("b");
  net.at("a").gone(["b"]);
  net.flush();
  assert.deepEqual(net.grants, ["b/0:cb:b0", "c/0:cb:c0"], "c's turn without waiting for b's");
  net.close();
});

Deno.test("LockKeeper: a request without its process or token is ignored", () => {
  const net = network(new ManualClock());
  net.members("a");
  const header: SignalHeader = {
    stage: "s",
    scope: "one",
    message: "cb",
    from: { stage: "s", worker: 0 },
    lock: { op: "acquire", name: "L", callback: "cb" },
  };
  const a = net.at("a");
  a.arrived(header, packValues([1]).bytes); // no from.at
  a.arrived({ ...header, from: { ...header.from, at: "x" } }, packValues(["no"]).bytes);
  assert.equal(a.inspect("L")?.waiting, 0);
  assert.equal(a.inspect("L")?.holder, undefined);
  net.close();
});
