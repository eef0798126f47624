/**
 * An order-statistic set of scored ids: a B+tree whose branches count the
 * entries under each child, and whose nodes point at their parents.
 *
 * - rank of an id: from its leaf up to the root, adding the counts of the
 *   children to the left: O(log n), no key comparisons;
 * - entry at a rank, first entry below a score bound, insert, delete:
 *   one descent from the root, O(log n);
 * - walking on in rank order: O(1) per entry (leaves are linked).
 *
 * Order (the ranking rule of the index service): scores compare tier by tier,
 * tier 0 first, the larger score first; entries whose four tiers are all equal
 * are ordered by id ascending, comparing UTF-16 code units (JavaScript's `<`).
 * Rank 1 is the first entry.
 *
 * @module
 */

/** The four score tiers of an entry, tier 0 first. */
export type Score = readonly [number, number, number, number];

/** An entry and its 1-based rank. */
export interface RankedEntry {
  id: string;
  rank: number;
  score: Score;
}

/**
 * The first index in `[lo, hi)` of a sorted `items` where `before` stops
 * holding (binary search; `before` is true for a prefix of the range).
 */
function partition<T>(items: readonly T[], lo: number, hi: number, before: (item: T) => boolean) {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(items[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Entries per leaf and children per branch, at most. */
const MAX = 64;
/** Below this a non-root node is merged with or refilled from a sibling. */
const MIN = MAX / 4;
/** How full {@link ScoreTree.fromSorted} fills nodes (room to grow before the first splits). */
const FILL = (MAX * 3) / 4;

/** An entry as the tree holds it (immutable but for its leaf: a new score is a new entry). */
class Entry {
  readonly id: string;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
  readonly s3: number;
  leaf: Leaf;

  constructor(id: string, score: Score, leaf: Leaf) {
    this.id = id;
    this.s0 = score[0];
    this.s1 = score[1];
    this.s2 = score[2];
    this.s3 = score[3];
    this.leaf = leaf;
  }

  score(): Score {
    return [this.s0, this.s1, this.s2, this.s3];
  }
}

class Leaf {
  readonly leaf = true;
  entries: Entry[] = [];
  parent: Branch | null = null;
  prev: Leaf | null = null;
  next: Leaf | null = null;

  get total(): number {
    return this.entries.length;
  }
}

class Branch {
  readonly leaf = false;
  children: TreeNode[] = [];
  /** `counts[i]`: the entries under `children[i]`. */
  counts: number[] = [];
  /**
   * `keys[i]` (i ≥ 1) separates `children[i - 1]` (every entry ranks before it)
   * from `children[i]` (no entry ranks before it). It may be an entry deleted
   * since: it still separates. `keys[0]` is unused.
   */
  keys: (Entry | undefined)[] = [];
  parent: Branch | null = null;
  total = 0;
}

type TreeNode = Leaf | Branch;

/** Negative when `entry` ranks before (`score`, `id`), 0 when it is that key. */
function compare(entry: Entry, score: Score, id: string): number {
  if (entry.s0 !== score[0]) return entry.s0 > score[0] ? -1 : 1;
  if (entry.s1 !== score[1]) return entry.s1 > score[1] ? -1 : 1;
  if (entry.s2 !== score[2]) return entry.s2 > score[2] ? -1 : 1;
  if (entry.s3 !== score[3]) return entry.s3 > score[3] ? -1 : 1;
  return entry.id < id ? -1 : entry.id > id ? 1 : 0;
}

/**
 * Compares the first `bound.length` tiers (1..4) of `score` with `bound`,
 * lexicographically: positive when the score is greater (ranks above the
 * bound), 0 when those tiers are equal, negative when it is smaller.
 */
export function comparePrefix(score: Score, bound: readonly number[]): number {
  for (let i = 0; i < bound.length; i++) {
    const tier = score[i]!;
    const limit = bound[i]!;
    if (tier !== limit) return tier > limit ? 1 : -1;
  }
  return 0;
}

/** `comparePrefix(entry's score, bound) > 0`, without building the score array. */
function above(entry: Entry, bound: readonly number[]): boolean {
  const n = bound.length;
  if (entry.s0 !== bound[0]) return entry.s0 > bound[0]!;
  if (n === 1) return false;
  if (entry.s1 !== bound[1]) return entry.s1 > bound[1]!;
  if (n === 2) return false;
  if (entry.s2 !== bound[2]) return entry.s2 > bound[2]!;
  if (n === 3) return false;
  return entry.s3 > bound[3]!;
}

/**
 * Scored ids in rank order, with O(log n) rank, select, insert and delete.
 *
 * @example
 * ```ts
 * import { ScoreTree } from "./score_tree.ts";
 * const tree = new ScoreTree();
 * tree.set("ann", [10, 0, 0, 0]);
 * tree.set("bob", [20, 0, 0, 0]);
 * if (tree.rank("ann") !== 2 || tree.at(1)?.id !== "bob") throw new Error("wrong order");
 * ```
 */
export class ScoreTree {
  #root: TreeNode = new Leaf();
  #byId = new Map<string, Entry>();

  /**
   * Builds a tree from entries already in rank order, in O(n) (a rebuild at
   * start). Nodes are filled to 3/4.
   *
   * @throws RangeError when the entries are not in strict rank order (or an id repeats)
   */
  static fromSorted(items: readonly { id: string; score: Score }[]): ScoreTree {
    const tree = new ScoreTree();
    if (items.length === 0) return tree;
    let level: TreeNode[] = [];
    let prev: Leaf | null = null;
    let last: Entry | undefined;
    for (const [start, end] of groups(items.length)) {
      const leaf = new Leaf();
      for (let i = start; i < end; i++) {
        const { id, score } = items[i]!;
        if (last !== undefined && compare(last, score, id) >= 0) {
          throw new RangeError(`ScoreTree.fromSorted: entry ${i} ("${id}") is out of rank order`);
        }
        last = new Entry(id, score, leaf);
        leaf.entries.push(last);
        tree.#byId.set(id, last);
      }
      leaf.prev = prev;
      if (prev !== null) prev.next = leaf;
      prev = leaf;
      level.push(leaf);
    }
    if (tree.#byId.size !== items.length) {
      throw new RangeError("ScoreTree.fromSorted: an id repeats");
    }
    while (level.length > 1) {
      const up: Branch[] = [];
      for (const [start, end] of groups(level.length)) {
        const branch = new Branch();
        branch.children = level.slice(start, end);
        branch.counts = branch.children.map((child) => child.total);
        branch.keys = branch.children.map(firstEntry);
        branch.total = sum(branch.counts);
        for (const child of branch.children) child.parent = branch;
        up.push(branch);
      }
      level = up;
    }
    tree.#root = level[0]!;
    return tree;
  }

  /** How many entries the tree holds. */
  get size(): number {
    return this.#byId.size;
  }

  /** Whether `id` has an entry. */
  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The score of `id` (a fresh array), or undefined. */
  score(id: string): Score | undefined {
    return this.#byId.get(id)?.score();
  }

  /**
   * Sets the score of `id` (inserting it if new) and returns its rank after
   * the update. An unchanged score leaves the entry where it is.
   */
  set(id: string, score: Score): number {
    const old = this.#byId.get(id);
    if (old !== undefined) {
      if (compare(old, score, id) === 0) return this.#rankOf(old);
      this.#remove(old);
    }
    return this.#insert(id, score);
  }

  /** Removes `id`; returns the rank it had, or 0 when it had no entry. */
  delete(id: string): number {
    const entry = this.#byId.get(id);
    if (entry === undefined) return 0;
    const rank = this.#rankOf(entry);
    this.#remove(entry);
    this.#byId.delete(id);
    return rank;
  }

  /** The 1-based rank of `id`, or 0 when it has no entry. */
  rank(id: string): number {
    const entry = this.#byId.get(id);
    return entry === undefined ? 0 : this.#rankOf(entry);
  }

  /** The entry at a 1-based rank, or undefined outside 1..size. */
  at(rank: number): RankedEntry | undefined {
    return Number.isInteger(rank) && rank >= 1 ? this.slice(rank, 1)[0] : undefined;
  }

  /** Up to `count` entries from rank `from` (1-based; below 1 counts as 1) on, in rank order. */
  slice(from: number, count: number): RankedEntry[] {
    const out: RankedEntry[] = [];
    let rank = Math.max(1, Math.floor(from));
    if (rank > this.size || count <= 0) return out;
    // Descend by counts to the leaf holding `rank`.
    let node = this.#root;
    let k = rank;
    while (!node.leaf) {
      let i = 0;
      while (k > node.counts[i]!) k -= node.counts[i++]!;
      node = node.children[i]!;
    }
    let leaf: Leaf | null = node;
    let index = k - 1;
    while (leaf !== null && out.length < count) {
      const entries: Entry[] = leaf.entries;
      for (; index < entries.length && out.length < count; index++) {
        const entry = entries[index]!;
        out.push({ id: entry.id, rank: rank++, score: entry.score() });
      }
      leaf = leaf.next;
      index = 0;
    }
    return out;
  }

  /**
   * How many entries rank above a score bound: those whose first
   * `bound.length` tiers (1..4) are lexicographically greater than `bound`.
   * `countAbove(b) + 1` is the rank of the first entry at or below `b`.
   */
  countAbove(bound: readonly number[]): number {
    let node = this.#root;
    let count = 0;
    // The entries above the bound come first: find where they end.
    while (!node.leaf) {
      const index = partition(node.keys, 1, node.children.length, (key) => above(key!, bound)) - 1;
      for (let i = 0; i < index; i++) count += node.counts[i]!;
      node = node.children[index]!;
    }
    return count + partition(node.entries, 0, node.entries.length, (entry) => above(entry, bound));
  }

  /** Every entry in rank order (O(n); for tests and snapshots). */
  *entries(): IterableIterator<RankedEntry> {
    let node = this.#root;
    while (!node.leaf) node = node.children[0]!;
    let rank = 1;
    for (let leaf: Leaf | null = node; leaf !== null; leaf = leaf.next) {
      for (const entry of leaf.entries) yield { id: entry.id, rank: rank++, score: entry.score() };
    }
  }

  #rankOf(entry: Entry): number {
    let child: TreeNode = entry.leaf;
    let rank = entry.leaf.entries.indexOf(entry) + 1;
    for (let parent = child.parent; parent !== null; child = parent, parent = parent.parent) {
      const counts = parent.counts;
      const index = parent.children.indexOf(child);
      for (let i = 0; i < index; i++) rank += counts[i]!;
    }
    return rank;
  }

  #insert(id: string, score: Score): number {
    let node = this.#root;
    let rank = 1;
    while (!node.leaf) {
      // The last child whose separator does not rank after the key.
      const index = partition(
        node.keys,
        1,
        node.children.length,
        (key) => compare(key!, score, id) <= 0, // keys[0] is unused: the search starts at 1
      ) - 1;
      for (let i = 0; i < index; i++) rank += node.counts[i]!;
      node.counts[index]!++;
      node.total++;
      node = node.children[index]!;
    }
    const entries = node.entries;
    const at = partition(entries, 0, entries.length, (entry) => compare(entry, score, id) < 0);
    const entry = new Entry(id, score, node);
    entries.splice(at, 0, entry);
    this.#byId.set(id, entry);
    if (entries.length > MAX) this.#split(node);
    return rank + at;
  }

  /** Unlinks `entry` from its leaf (the id map is the caller's business). */
  #remove(entry: Entry): void {
    const leaf = entry.leaf;
    leaf.entries.splice(leaf.entries.indexOf(entry), 1);
    let child: TreeNode = leaf;
    for (let parent = leaf.parent; parent !== null; child = parent, parent = parent.parent) {
      parent.counts[parent.children.indexOf(child)]!--;
      parent.total--;
    }
    if (leaf.parent !== null && leaf.entries.length < MIN) this.#rebalance(leaf);
  }

  /** Splits an overfull node in two halves and links the right half into the parent. */
  #split(node: TreeNode): void {
    let right: TreeNode;
    let separator: Entry;
    if (node.leaf) {
      const leaf = new Leaf();
      leaf.entries = node.entries.splice(node.entries.length >> 1);
      for (const entry of leaf.entries) entry.leaf = leaf;
      leaf.next = node.next;
      leaf.prev = node;
      if (node.next !== null) node.next.prev = leaf;
      node.next = leaf;
      separator = leaf.entries[0]!;
      right = leaf;
    } else {
      const branch = new Branch();
      const half = node.children.length >> 1;
      branch.children = node.children.splice(half);
      branch.counts = node.counts.splice(half);
      branch.keys = node.keys.splice(half);
      separator = branch.keys[0]!;
      for (const child of branch.children) child.parent = branch;
      branch.total = sum(branch.counts);
      node.total -= branch.total;
      right = branch;
    }
    let parent = node.parent;
    if (parent === null) {
      parent = new Branch();
      parent.children = [node];
      parent.counts = [node.total + right.total];
      parent.keys = [undefined];
      parent.total = node.total + right.total;
      node.parent = parent;
      this.#root = parent;
    }
    const index = parent.children.indexOf(node);
    parent.children.splice(index + 1, 0, right);
    parent.counts.splice(index + 1, 0, right.total);
    parent.keys.splice(index + 1, 0, separator);
    parent.counts[index] = node.total;
    right.parent = parent;
    if (parent.children.length > MAX) this.#split(parent);
  }

  /** Merges an underfull node with a sibling, or evens the two out. */
  #rebalance(node: TreeNode): void {
    const parent = node.parent!;
    const index = parent.children.indexOf(node);
    const j = index > 0 ? index : 1; // the right one of the pair
    const a = parent.children[j - 1]!;
    const b = parent.children[j]!;
    if (a.leaf !== b.leaf) throw new Error("ScoreTree: siblings of different depth");
    if (a.leaf && b.leaf) {
      if (a.entries.length + b.entries.length <= MAX) {
        for (const entry of b.entries) entry.leaf = a;
        a.entries.push(...b.entries);
        a.next = b.next;
        if (b.next !== null) b.next.prev = a;
        this.#dropChild(parent, j);
        return;
      }
      const all = a.entries.concat(b.entries);
      const half = all.length >> 1;
      a.entries = all.slice(0, half);
      b.entries = all.slice(half);
      for (const entry of b.entries) entry.leaf = b;
      for (const entry of a.entries) entry.leaf = a;
      parent.keys[j] = b.entries[0]!;
    } else if (!a.leaf && !b.leaf) {
      const children = a.children.concat(b.children);
      const counts = a.counts.concat(b.counts);
      // b's first child is separated from a's last by the parent's key.
      const keys = a.keys.concat([parent.keys[j]], b.keys.slice(1));
      if (children.length <= MAX) {
        a.children = children;
        a.counts = counts;
        a.keys = keys;
        a.total += b.total;
        for (const child of b.children) child.parent = a;
        this.#dropChild(parent, j);
        return;
      }
      const half = children.length >> 1;
      a.children = children.slice(0, half);
      a.counts = counts.slice(0, half);
      a.keys = keys.slice(0, half);
      b.children = children.slice(half);
      b.counts = counts.slice(half);
      b.keys = keys.slice(half);
      parent.keys[j] = b.keys[0];
      for (const child of a.children) child.parent = a;
      for (const child of b.children) child.parent = b;
      a.total = sum(a.counts);
      b.total = sum(b.counts);
    }
    parent.counts[j - 1] = a.total;
    parent.counts[j] = b.total;
  }

  /** Removes `parent.children[j]` (merged into its left sibling) and fixes the parent up. */
  #dropChild(parent: Branch, j: number): void {
    parent.children.splice(j, 1);
    parent.counts.splice(j, 1);
    parent.keys.splice(j, 1);
    parent.counts[j - 1] = parent.children[j - 1]!.total;
    if (parent.parent === null) {
      if (parent.children.length === 1) {
        this.#root = parent.children[0]!;
        this.#root.parent = null;
      }
    } else if (parent.children.length < MIN) {
      this.#rebalance(parent);
    }
  }
}

/** `[start, end)` ranges splitting `n` items into even groups of at most {@link FILL}. */
function* groups(n: number): Generator<[number, number]> {
  const count = Math.ceil(n / FILL);
  for (let g = 0; g < count; g++) {
    yield [Math.floor((g * n) / count), Math.floor(((g + 1) * n) / count)];
  }
}

function firstEntry(node: TreeNode): Entry {
  return node.leaf ? node.entries[0]! : node.keys[0]!;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
