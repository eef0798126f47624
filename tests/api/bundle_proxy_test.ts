/**
 * bundle.proxy: edge-triggered threshold watchers, change watchers, the
 * catch-all, errors and shallowness.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { crossedEdges, proxy } from "../../core/api/bundle_proxy.ts";

type Call = [edges: number[], key: string | symbol, value: unknown, previous: unknown];

Deno.test("bundle.proxy calls a threshold watcher with the crossed edges in crossing order", () => {
  const calls: Call[] = [];
  const target = { hp: 0 };
  const hero: { hp: number } = proxy(target, {
    hp: [10, 20, 30, (p, edges, key, value, previous): void => {
      assert.equal(p, hero, "the watcher receives the proxy");
      calls.push([edges, key, value, previous]);
    }],
  });
  hero.hp = 25; // rises through 10 and 20
  hero.hp = 35; // rises through 30
  hero.hp = 5; // falls through 30, 20, 10
  assert.deepEqual(calls, [
    [[10, 20], "hp", 25, 0],
    [[30], "hp", 35, 25],
    [[30, 20, 10], "hp", 5, 35],
  ]);
  assert.equal(target.hp, 5, "writes reach the object");
});

Deno.test("bundle.proxy threshold watchers are edge-triggered: writes that cross nothing call nothing", () => {
  const calls: number[][] = [];
  const hero = proxy({ hp: 15 }, { hp: [10, 20, (_p, edges) => calls.push(edges)] });
  hero.hp = 19; // still between 10 and 20
  hero.hp = 20; // reaches 20: crossed
  hero.hp = 25; // 20 stays reached
  hero.hp = 20; // 20 still reached: nothing
  hero.hp = 19.5; // below 20 again: crossed
  hero.hp = 19.5; // same value
  assert.deepEqual(calls, [[20], [20]]);
});

Deno.test("bundle.proxy threshold watchers ignore non-numeric and NaN values", () => {
  const calls: number[][] = [];
  const state: Record<string, unknown> = {};
  const watched = proxy(state, { level: [1, 2, (_p, edges) => calls.push(edges)] });
  watched.level = 5; // from undefined: not a number, no edge
  watched.level = "3";
  watched.level = 0; // from a string
  watched.level = Number.NaN;
  watched.level = 3; // from NaN
  assert.deepEqual(calls, []);
  watched.level = 0; // a numeric fall through 2 and 1
  assert.deepEqual(calls, [[2, 1]]);
});

Deno.test("bundle.proxy calls a function watcher on every change but not on same-value writes", () => {
  const calls: Array<[string | symbol, unknown, unknown]> = [];
  const obj = proxy({ name: "Ada", n: Number.NaN }, {
    name: (_p, key, value, previous) => calls.push([key, value, previous]),
    n: (_p, key, value, previous) => calls.push([key, value, previous]),
  });
  obj.name = "Ada";
  obj.name = "Grace";
  obj.name = "Grace";
  obj.n = Number.NaN; // Object.is: NaN is NaN, no change
  obj.n = 1;
  assert.deepEqual(calls, [["name", "Grace", "Ada"], ["n", 1, Number.NaN]]);
});

Deno.test("bundle.proxy calls the catch-all only for keys watch does not name, deletes included", () => {
  const other: Array<[string | symbol, unknown, unknown]> = [];
  const named: unknown[] = [];
  const obj = proxy<Record<string, unknown>>(
    { a: 1, b: 2 },
    { a: (_p, _k, value) => named.push(value) },
    (_p, key, value, previous) => other.push([key, value, previous]),
  );
  obj.a = 10;
  obj.b = 20;
  obj.c = 30;
  delete obj.b;
  delete obj.missing; // nothing was there: no change
  assert.deepEqual(named, [10]);
  assert.deepEqual(other, [["b", 20, 2], ["c", 30, undefined], ["b", undefined, 20]]);
  assert.equal("b" in obj, false);
});

Deno.test("bundle.proxy propagates a watcher's exception to the writer after storing the value", () => {
  const target = { hp: 50 };
  const hero = proxy(target, {
    hp: [0, () => {
      throw new Error("hero died");
    }],
  });
  assert.throws(() => {
    hero.hp = -1;
  }, /hero died/);
  assert.equal(target.hp, -1, "the value stays written");
  hero.hp = -2; // no edge crossed: no exception
});

Deno.test("bundle.proxy watches shallowly and lets watchers write through the proxy", () => {
  const seen: unknown[] = [];
  const obj = proxy({ pos: { x: 0 }, hp: 10, dead: false }, {
    pos: () => seen.push("pos"),
    hp: [1, (p, _edges, _key, value) => {
      p.dead = (value as number) < 1;
    }],
    dead: (_p, _key, value) => seen.push(`dead ${value}`),
  });
  obj.pos.x = 5; // inside a nested object: not seen
  obj.hp = 0; // its watcher writes `dead`, whose watcher runs
  assert.deepEqual(seen, ["dead true"]);
  assert.equal(obj.dead, true);
});

Deno.test("bundle.proxy rejects malformed watch entries naming the key", () => {
  const f = () => {};
  const bad: Array<[unknown, RegExp]> = [
    [{ hp: [10, 20] }, /watch "hp" must be a function or \[threshold, …, callback\]/],
    [{ hp: [f] }, /watch "hp"/],
    [{ hp: [20, 10, f] }, /thresholds of watch "hp" must ascend; 10 follows 20/],
    [{ hp: [10, 10, f] }, /must ascend/],
    [{ hp: [Number.NaN, f] }, /threshold 0 of watch "hp" must be a finite number; got NaN/],
    [{ hp: ["10", f] }, /got "10"/],
    [{ hp: 5 }, /watch "hp"/],
    [null, /watch must be an object/],
  ];
  for (const [watch, message] of bad) {
    assert.throws(() => proxy({}, watch as never), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => proxy(5 as never, {}), /needs an object; got 5/);
  assert.throws(() => proxy({}, {}, 3 as never), /catch-all must be a function/);
});

Deno.test("bundle.proxy edges keep track of the reached thresholds for any write sequence", () => {
  // Model: the thresholds reached (t <= value). Applying each call's edges to the
  // reached set (rising adds, falling removes) must always give the model's set.
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: -50, max: 50 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.integer({ min: -60, max: 60 }), { maxLength: 30 }),
      (raw, writes) => {
        const thresholds = [...raw].sort((a, b) => a - b);
        const reached = new Set(thresholds.filter((t) => t <= 0));
        const obj = proxy({ v: 0 }, {
          v: [...thresholds, (_p, edges, _key, value, previous) => {
            const rising = (value as number) > (previous as number);
            const order = rising
              ? [...edges].sort((a, b) => a - b)
              : [...edges].sort((a, b) => b - a);
            assert.deepEqual(edges, order, "crossing order");
            for (const t of edges) rising ? reached.add(t) : reached.delete(t);
          }],
        });
        for (const value of writes) {
          obj.v = value;
          assert.deepEqual(
            [...reached].sort((a, b) => a - b),
            thresholds.filter((t) => t <= value),
          );
        }
      },
    ),
  );
});

Deno.test("crossedEdges lists thresholds between two numbers, rising ascending and falling descending", () => {
  assert.deepEqual(crossedEdges([10, 20, 30], 5, 30), [10, 20, 30]);
  assert.deepEqual(crossedEdges([10, 20, 30], 30, 5), [30, 20, 10]);
  assert.deepEqual(crossedEdges([10, 20, 30], 30, 20), [30]);
  assert.deepEqual(crossedEdges([10, 20, 30], 12, 18), []);
  assert.deepEqual(crossedEdges([-5, 0], -10, 0), [-5, 0]);
  assert.deepEqual(crossedEdges([10], undefined, 20), []);
});
