/**
 * LockManager: FIFO turns, extension, release, expiry of a crashed holder.
 */
import assert from "node:assert/strict";
import { type LockGrant, LockManager } from "../../core/message/lock_manager.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

function setup(holdMs?: number) {
  const clock = new ManualClock();
  const grants: LockGrant[] = [];
  const expired: LockGrant[] = [];
  const locks = new LockManager({
    clock,
    grant: (grant) => grants.push(grant),
    expired: (grant) => expired.push(grant),
    ...(holdMs === undefined ? {} : { holdMs }),
  });
  return { clock, grants, expired, locks };
}

Deno.test("LockManager grants N contenders one at a time in FIFO order", () => {
  const { grants, locks } = setup();
  for (const owner of ["a", "b", "c", "d"]) {
    locks.acquire("L", { owner, callback: "turn", values: [owner] });
  }
  assert.deepEqual(grants.map((g) => g.owner), ["a"]);
  assert.equal(locks.inspect("L").waiting, 3);
  for (const owner of ["a", "b", "c", "d"]) {
    assert.equal(locks.inspect("L").holder?.owner, owner);
    assert.equal(locks.release("L", owner, "*"), true);
  }
  assert.deepEqual(grants.map((g) => g.owner), ["a", "b", "c", "d"]);
  assert.deepEqual(grants.map((g) => g.turn), [1, 2, 3, 4]);
  assert.equal(locks.size, 0, "an idle lock is forgotten");
});

Deno.test("LockManager expires an unreleased hold after 100 ms by default and moves on", () => {
  const { clock, grants, expired, locks } = setup();
  locks.acquire("L", { owner: "crashed", callback: "cb", values: [] });
  locks.acquire("L", { owner: "next", callback: "cb", values: [] });
  clock.advance(99);
  assert.equal(locks.inspect("L").holder?.owner, "crashed");
  clock.advance(1);
  assert.deepEqual(expired.map((g) => g.owner), ["crashed"]);
  assert.equal(locks.inspect("L").holder?.owner, "next");
  assert.equal(grants.length, 2);
  assert.equal(locks.release("L", "crashed", "*"), false, "a stale release changes nothing");
});

Deno.test("LockManager extends a hold only for its holder", () => {
  const { clock, locks } = setup(50);
  locks.acquire("L", { owner: "a", callback: "cb", values: [] });
  locks.acquire("L", { owner: "b", callback: "cb", values: [] });
  clock.advance(40);
  assert.equal(locks.extend("L", "a", 200), true);
  assert.equal(locks.extend("L", "b", 200), false);
  clock.advance(150);
  assert.equal(locks.inspect("L").holder?.owner, "a", "still held after the default hold");
  clock.advance(50);
  assert.equal(locks.inspect("L").holder?.owner, "b");
});

Deno.test("LockManager release by callback cancels waiting requests; releaseOwner drops everything", () => {
  const { grants, locks } = setup();
  locks.acquire("L", { owner: "a", callback: "x", values: [] });
  locks.acquire("L", { owner: "b", callback: "y", values: [] });
  locks.acquire("L", { owner: "b", callback: "z", values: [] });
  locks.acquire("L", { owner: "c", callback: "x", values: [] });
  assert.equal(locks.release("L", "a", "other"), false, "wrong callback does not release");
  assert.equal(locks.release("L", "b", "y"), true, "cancels b's waiting y");
  locks.releaseOwner("a");
  assert.deepEqual(grants.map((g) => `${g.owner}.${g.callback}`), ["a.x", "b.z"]);
  locks.releaseOwner("b");
  assert.equal(locks.inspect("L").holder?.owner, "c");
  locks.close();
});
