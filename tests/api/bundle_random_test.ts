/**
 * bundle.random: WELL512a against the reference implementation's output,
 * seeding, ranges and uniformity (fixed seeds: deterministic, cannot flake).
 */
import assert from "node:assert/strict";
import { nextWord, random, type RandomState, seedRandom } from "../../core/api/bundle_random.ts";

/**
 * Outputs 1..8 and 1000 of the reference WELL512a.c (Panneton, L'Ecuyer and
 * Matsumoto), compiled with gcc, after `InitWELLRNG512a(init)`; each output is
 * `STATE[state_i]` after a call (the double it returns times 2^32).
 */
const VECTORS: Array<{ init: number[]; first: number[]; thousandth: number }> = [
  {
    init: Array.from({ length: 16 }, (_, j) => j + 1),
    first: [
      2692481146,
      2447117626,
      752362814,
      4237304894,
      3767796794,
      3498837026,
      3236431142,
      3162776622,
    ],
    thousandth: 3934506550,
  },
  {
    init: Array.from({ length: 16 }, (_, j) => Math.imul(0x9e3779b9, j + 1) >>> 0),
    first: [
      1985665426,
      1216224866,
      3153592311,
      3993998164,
      1046032881,
      3006880558,
      3884916106,
      785607747,
    ],
    thousandth: 1756110175,
  },
];

Deno.test("bundle.random.next matches the reference WELL512a output vectors", () => {
  for (const { init, first, thousandth } of VECTORS) {
    const state: RandomState = { words: [...init], index: 0 };
    const out: number[] = [];
    for (let i = 0; i < 1000; i++) out.push(nextWord(state));
    assert.deepEqual(out.slice(0, 8), first);
    assert.equal(out[999], thousandth);
  }
});

Deno.test("bundle.random.seed gives equal sequences for equal seeds, in plain data that travels", () => {
  const a = seedRandom(42);
  const b = seedRandom(42);
  const c = seedRandom(43);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.equal(a.words.length, 16);
  assert.ok(a.words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32));
  assert.deepEqual(seedRandom(-1), seedRandom(2 ** 32 - 1), "seeds are taken modulo 2^32");
  for (let i = 0; i < 5; i++) random(a, 1, 100);
  // Halfway through, the state is cloned (as stage.shared or a message would) and sent as JSON.
  const cloned = structuredClone(a);
  const viaJson = JSON.parse(JSON.stringify(a)) as RandomState;
  const next = (s: RandomState) => Array.from({ length: 20 }, () => random(s, 1, 1_000_000));
  const expected = next(a);
  assert.deepEqual(next(cloned), expected);
  assert.deepEqual(next(viaJson), expected);
  for (let i = 0; i < 5; i++) random(b, 1, 100);
  assert.deepEqual(next(b), expected, "same seed, same sequence");
  assert.notDeepEqual(next(c), expected);
});

Deno.test("bundle.random.seed without a seed draws a fresh non-zero state", () => {
  const a = seedRandom();
  const b = seedRandom();
  assert.notDeepEqual(a.words, b.words);
  assert.ok(a.words.some((w) => w !== 0));
  assert.throws(() => seedRandom(1.5), /needs an integer; got 1.5/);
});

Deno.test("bundle.random(state, lo, hi) returns integers in [lo, hi] inclusive, reaching both ends", () => {
  const state = seedRandom(1);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const n = random(state, -3, 3);
    assert.ok(Number.isInteger(n) && n >= -3 && n <= 3, `${n} outside [-3, 3]`);
    seen.add(n);
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3]);
  assert.equal(random(state, 7, 7), 7);
  const big = random(state, 0, Number.MAX_SAFE_INTEGER);
  assert.ok(Number.isSafeInteger(big) && big >= 0);
});

Deno.test("bundle.random(state, n) returns integers in [1, n] and random(state) floats in [0, 1)", () => {
  const state = seedRandom(2);
  const seen = new Set<number>();
  let sum = 0;
  for (let i = 0; i < 1000; i++) {
    const n = random(state, 4);
    assert.ok(n >= 1 && n <= 4);
    seen.add(n);
    const f = random(state);
    assert.ok(f >= 0 && f < 1, `${f} outside [0, 1)`);
    sum += f;
  }
  assert.equal(seen.size, 4);
  assert.ok(Math.abs(sum / 1000 - 0.5) < 0.05, `mean ${sum / 1000}`);
});

Deno.test("bundle.random(state, 1, 6) passes a chi-square test for uniformity", () => {
  const state = seedRandom(20240601);
  const draws = 60_000;
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < draws; i++) counts[random(state, 1, 6) - 1]!++;
  const expected = draws / 6;
  const chi2 = counts.reduce((sum, n) => sum + (n - expected) ** 2 / expected, 0);
  // 5 degrees of freedom: 20.52 is the p = 0.001 critical value.
  assert.ok(chi2 < 20.52, `chi-square ${chi2.toFixed(2)} for counts ${counts.join(",")}`);
});

Deno.test("bundle.random has no modulo bias for ranges that do not divide 2^32", () => {
  // span = 3 * 2^30: plain `word % span` would give [0, 2^30) half the draws instead of a third.
  const state = seedRandom(99);
  const span = 3 * 2 ** 30;
  let low = 0;
  const draws = 30_000;
  for (let i = 0; i < draws; i++) if (random(state, 0, span - 1) < 2 ** 30) low++;
  const share = low / draws;
  assert.ok(share > 0.31 && share < 0.36, `share of the low third: ${share}`);
});

Deno.test("bundle.random rejects bad bounds and states with errors naming them", () => {
  const state = seedRandom(3);
  assert.throws(() => random(state, 5, 1), RangeError);
  assert.throws(() => random(state, 5, 1), /lo 5 is greater than hi 1/);
  assert.throws(() => random(state, 1.5, 3), /safe integers; got lo 1.5, hi 3/);
  assert.throws(() => random(state, -(2 ** 53), 2 ** 53 - 1), TypeError);
  assert.throws(
    () => random(state, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    /spans more than 2\^53 values/,
  );
  assert.throws(() => random({ words: [1, 2], index: 0 }), /needs a state from bundle.random.seed/);
  assert.throws(() => random(null as never), TypeError);
  assert.throws(() => nextWord({ words: state.words, index: 16 }), TypeError);
});
