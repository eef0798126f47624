/** RouteTable: subscriptions, pauses, expiry and round robin, on a ManualClock. */
import assert from "node:assert/strict";
import { RouteTable, SUBSCRIPTION_EXPIRY_MS } from "../../core/services/route_table.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

const a = { stage: "chat", worker: 0 };
const b = { stage: "chat", worker: 1 };
const c = { stage: "bot", worker: 0 };

function keys(table: RouteTable, id: string): string[] {
  return table.candidates(id).map((candidate) => candidate.key);
}

Deno.test("RouteTable subscribes and unsubscribes per id, with the callback of each", () => {
  using table = new RouteTable(new ManualClock());
  table.subscribe(a, { room: "on_room", lobby: "on_lobby" });
  table.subscribe(b, { room: "b_room" });
  assert.deepEqual(
    table.candidates("room").map(({ key, callback }) => [key, callback]),
    [["chat/0", "on_room"], ["chat/1", "b_room"]],
  );
  table.subscribe(a, { room: null, lobby: "lobby2" });
  assert.deepEqual(keys(table, "room"), ["chat/1"]);
  assert.equal(table.callbackOf(a, "lobby"), "lobby2");
  assert.equal(table.unsubscribe(b, "room"), true);
  assert.equal(table.unsubscribe(b, "room"), false);
  assert.deepEqual(keys(table, "room"), []);
  assert.equal(table.size, 1, "b has no subscription left");
  assert.equal(table.remove(a), true);
  assert.equal(table.remove(a), false);
  assert.equal(table.size, 0);
});

Deno.test("RouteTable expires subscriptions 30 s after the last subscribe or renew", () => {
  const clock = new ManualClock();
  using table = new RouteTable(clock);
  table.subscribe(a, { room: "cb" });
  table.subscribe(b, { room: "cb" });
  clock.advance(SUBSCRIPTION_EXPIRY_MS - 1000);
  assert.equal(table.renew(a), true);
  table.subscribe(b, { other: "cb" }); // subscribing renews every subscription of b
  clock.advance(SUBSCRIPTION_EXPIRY_MS - 1);
  assert.deepEqual(keys(table, "room"), ["chat/0", "chat/1"], "renewed: still live");
  clock.advance(1);
  assert.deepEqual(keys(table, "room"), [], "30 s without renewal: gone");
  assert.equal(table.renew(a), false, "nothing left to renew");
  assert.equal(table.size, 0);
});

Deno.test("RouteTable's sweep drops expired subscribers without being asked; dispose stops it", () => {
  const clock = new ManualClock();
  const table = new RouteTable(clock, { expiryMs: 1000 });
  table.subscribe(a, { room: "cb" });
  clock.advance(999);
  assert.equal(table.size, 1);
  clock.advance(1001);
  assert.equal(table.size, 0, "the sweep removed the expired subscriber");
  table[Symbol.dispose]();
  assert.equal(clock.pending, 0);
});

Deno.test("RouteTable pauses for a time, until resumed, and renew resumes", () => {
  const clock = new ManualClock();
  using table = new RouteTable(clock);
  table.subscribe(a, { room: "cb" });
  table.subscribe(b, { room: "cb" });
  assert.equal(table.pause(a, 200), true);
  assert.deepEqual(keys(table, "room"), ["chat/1"], "paused a is skipped");
  clock.advance(199);
  assert.deepEqual(keys(table, "room"), ["chat/1"]);
  clock.advance(1);
  assert.deepEqual(keys(table, "room"), ["chat/0", "chat/1"], "the pause ended by itself");
  table.pause(b);
  clock.advance(10_000);
  assert.deepEqual(keys(table, "room"), ["chat/0"], "paused until renewed");
  assert.equal(table.callbackOf(b, "room"), "cb", "a paused subscriber is still subscribed");
  table.renew(b);
  table.renew(a);
  assert.deepEqual(keys(table, "room"), ["chat/0", "chat/1"]);
  assert.equal(table.pause(c, 10), false, "an unknown subscriber cannot pause");
});

Deno.test("RouteTable chooses round robin among the willing", () => {
  using table = new RouteTable(new ManualClock());
  for (const subscriber of [a, b, c]) table.subscribe(subscriber, { job: "cb" });
  const all = new Set(["chat/0", "chat/1", "bot/0"]);
  const picks = Array.from({ length: 6 }, () => table.choose("job", all));
  assert.deepEqual(picks, ["chat/0", "chat/1", "bot/0", "chat/0", "chat/1", "bot/0"]);
  const someWilling = new Set(["chat/0", "bot/0"]);
  assert.deepEqual(
    Array.from({ length: 4 }, () => table.choose("job", someWilling)),
    ["chat/0", "bot/0", "chat/0", "bot/0"],
    "the unwilling one is never chosen; the others alternate",
  );
  assert.equal(table.choose("job", new Set()), undefined);
  assert.equal(table.choose("nobody", all), undefined);
});

Deno.test("RouteTable remembers a subscriber without a probe handler until it subscribes again", () => {
  using table = new RouteTable(new ManualClock());
  table.subscribe(a, { room: "cb" });
  assert.equal(table.candidates("room")[0]?.probe, true);
  table.noProbe(a);
  assert.equal(table.candidates("room")[0]?.probe, false);
  table.renew(a);
  assert.equal(table.candidates("room")[0]?.probe, false, "renewing is not subscribing");
  table.subscribe(a, { room: "cb" });
  assert.equal(table.candidates("room")[0]?.probe, true);
});

Deno.test("RouteTable rejects a non-positive expiry", () => {
  assert.throws(() => new RouteTable(new ManualClock(), { expiryMs: 0 }), RangeError);
});
