/**
 * `bundle.random`: the WELL512a generator (Panneton, L'Ecuyer and Matsumoto;
 * the compact form of Chris Lomont's public-domain version) over an explicit,
 * plain-data state. No hidden global state: the same seed gives the same
 * sequence in every worker and process, and a state can be stored in
 * `stage.shared` or sent in a message and continue where it stopped.
 *
 * @module
 */

/** A WELL512a state: 16 unsigned 32-bit words and the current index (0..15). Plain data. */
export interface RandomState {
  words: number[];
  index: number;
}

const WORDS = 16;
const TWO_32 = 2 ** 32;
const TWO_53 = 2 ** 53;

/**
 * Builds a state from an integer seed (its value modulo 2^32 selects the state;
 * equal seeds give equal sequences), or from fresh entropy without a seed.
 *
 * @throws TypeError when `seed` is not an integer
 * @example
 * ```ts
 * import { random, seedRandom } from "./bundle_random.ts";
 * const a = seedRandom(42);
 * const b = seedRandom(42);
 * if (random(a, 1, 6) !== random(b, 1, 6)) throw new Error("same seed, same sequence");
 * ```
 */
export function seedRandom(seed?: number): RandomState {
  const words = new Array<number>(WORDS);
  if (seed === undefined) {
    const fresh = crypto.getRandomValues(new Uint32Array(WORDS));
    for (let i = 0; i < WORDS; i++) words[i] = fresh[i]!;
    // An all-zero state would only ever give zeros.
    if (!words.some((w) => w !== 0)) words[0] = 1;
    return { words, index: 0 };
  }
  if (!Number.isInteger(seed)) {
    throw new TypeError(`bundle.random.seed(seed) needs an integer; got ${String(seed)}`);
  }
  // Knuth's linear initialiser (as in the Mersenne Twister): never all zero.
  let word = (seed % TWO_32 + TWO_32) % TWO_32;
  words[0] = word;
  for (let i = 1; i < WORDS; i++) {
    word = (Math.imul(1812433253, word ^ (word >>> 30)) + i) >>> 0;
    words[i] = word;
  }
  return { words, index: 0 };
}

/**
 * Advances `state` by one step and returns the raw 32-bit output (an unsigned
 * integer), exactly the reference WELL512a output.
 *
 * @throws TypeError when `state` is not a {@link RandomState}
 * @example
 * ```ts
 * import { nextWord, seedRandom } from "./bundle_random.ts";
 * const word = nextWord(seedRandom(1));
 * if (!Number.isInteger(word) || word < 0 || word >= 2 ** 32) throw new Error("not a uint32");
 * ```
 */
export function nextWord(state: RandomState): number {
  checkState(state);
  const s = state.words;
  const index = state.index;
  let a = s[index]!;
  let c = s[(index + 13) & 15]!;
  const b = a ^ c ^ (a << 16) ^ (c << 15);
  c = s[(index + 9) & 15]!;
  c ^= c >>> 11;
  a = s[index] = (b ^ c) >>> 0;
  const d = a ^ ((a << 5) & 0xda442d24);
  const next = (index + 15) & 15;
  a = s[next]!;
  const out = (a ^ b ^ d ^ (a << 2) ^ (b << 18) ^ (c << 28)) >>> 0;
  s[next] = out;
  state.index = next;
  return out;
}

/**
 * `random(state)` → a float in [0, 1) with 53 random bits (two steps);
 * `random(state, n)` → an integer in [1, n] (as Lua's `math.random(n)`);
 * `random(state, lo, hi)` → an integer in [lo, hi], both inclusive. Integers are
 * uniform (rejection sampling, no modulo bias); the range may span up to 2^53
 * values. Advances `state` in place.
 *
 * @throws TypeError when `state` is not a {@link RandomState} or a bound is not a safe integer
 * @throws RangeError when `lo > hi` or the range spans more than 2^53 values
 * @example
 * ```ts
 * import { random, seedRandom } from "./bundle_random.ts";
 * const state = seedRandom(7);
 * const die = random(state, 1, 6);
 * if (die < 1 || die > 6) throw new Error("out of range");
 * const f = random(state);
 * if (f < 0 || f >= 1) throw new Error("not in [0, 1)");
 * ```
 */
export function random(state: RandomState, lo?: number, hi?: number): number {
  if (lo === undefined) {
    const high = nextWord(state) >>> 5; // 27 bits
    const low = nextWord(state) >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / TWO_53;
  }
  if (hi === undefined) {
    hi = lo;
    lo = 1;
  }
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) {
    throw new TypeError(
      `bundle.random(state, lo, hi) needs safe integers; got lo ${String(lo)}, hi ${String(hi)}`,
    );
  }
  if (lo > hi) throw new RangeError(`bundle.random: lo ${lo} is greater than hi ${hi}`);
  const span = hi - lo + 1;
  if (span > TWO_53) {
    throw new RangeError(`bundle.random: the range [${lo}, ${hi}] spans more than 2^53 values`);
  }
  if (span <= TWO_32) {
    // The largest multiple of span below 2^32: words at or above it would bias the result.
    const limit = TWO_32 - (TWO_32 % span);
    let word = nextWord(state);
    while (word >= limit) word = nextWord(state);
    return lo + (word % span);
  }
  const limit = TWO_53 - (TWO_53 % span);
  for (;;) {
    const value = (nextWord(state) >>> 11) * TWO_32 + nextWord(state);
    if (value < limit) return lo + (value % span);
  }
}

function checkState(state: RandomState): void {
  if (
    typeof state !== "object" || state === null || !Array.isArray(state.words) ||
    state.words.length !== WORDS || !Number.isInteger(state.index) || state.index < 0 ||
    state.index >= WORDS
  ) {
    throw new TypeError(
      `bundle.random needs a state from bundle.random.seed() ({ words: 16 numbers, index: 0..15 }); ` +
        `got ${describeState(state)}`,
    );
  }
}

function describeState(state: unknown): string {
  if (state === null || typeof state !== "object") return String(state);
  try {
    return JSON.stringify(state).slice(0, 80);
  } catch {
    return "an object";
  }
}
