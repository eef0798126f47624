import assert from "node:assert/strict";
import { WaitforRegistry } from "../../core/message/waitfor_registry.ts";

Deno.test("WaitforRegistry matches the full id first, then groups from long to short, then the stage", () => {
  const registry = new WaitforRegistry("0");
  const hit = (id: string) => registry.match(id)?.id;
  registry.register("a:", () => {});
  assert.equal(hit("a:g.m.cb"), "a:");
  registry.register("a:g.", () => {});
  assert.equal(hit("a:g.m.cb"), "a:g.");
  registry.register("a:g.m.", () => {});
  assert.equal(hit("a:g.m.cb"), "a:g.m.");
  registry.register("a:g.m.cb", () => {});
  assert.equal(hit("a:g.m.cb"), "a:g.m.cb");
  assert.equal(hit("a:other"), "a:");
  assert.equal(hit("b:g.m.cb"), undefined);
});

Deno.test("WaitforRegistry generates unique ids, unregisters and validates", () => {
  const registry = new WaitforRegistry("w3");
  const first = registry.generate(() => 1, ["x"]);
  const second = registry.generate(() => 2);
  assert.notEqual(first, second);
  assert.match(first, /^~w3\./);
  assert.deepEqual(registry.get(first)?.bound, ["x"]);
  assert.equal(registry.unregister(first), true);
  assert.equal(registry.unregister(first), false);
  assert.equal(registry.get(first), undefined);
  assert.equal(registry.size, 1);
  assert.throws(() => registry.register("", () => {}), TypeError);
  assert.throws(() => registry.register("x", 5 as never), /expected a function or null/);
  assert.equal(registry.register("s", () => {}, [], true).serial, true);
});
