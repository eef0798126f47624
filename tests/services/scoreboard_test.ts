/**
 * ScoreTree (the order-statistic B+tree), the SQLite score store and the
 * Scoreboard (boards, replies, group commit) without a running process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { type Score, ScoreTree } from "../../core/services/score_tree.ts";
import {
  openSqliteScoreStore,
  type ScoreStore,
  type StoreWrite,
} from "../../core/services/score_store.ts";
import { rankOrder, Scoreboard } from "../../core/services/scoreboard.ts";

const s = (...tiers: number[]): Score => [0, 1, 2, 3].map((i) => tiers[i] ?? 0) as unknown as Score;

/** The naive model: entries kept sorted by the ranking rule. */
class SortedModel {
  list: { id: string; score: Score }[] = [];
  set(id: string, score: Score): number {
    this.delete(id);
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const entry = this.list[mid]!;
      if (rankOrder(entry.score, entry.id, score, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.list.splice(lo, 0, { id, score });
    this.ranks = undefined;
    return lo + 1;
  }
  delete(id: string): number {
    const rank = this.list.findIndex((entry) => entry.id === id) + 1;
    if (rank > 0) this.list.splice(rank - 1, 1);
    this.ranks = undefined;
    return rank;
  }
  ranks: Map<string, number> | undefined;
  rank(id: string): number {
    this.ranks ??= new Map(this.list.map((entry, i) => [entry.id, i + 1]));
    return this.ranks.get(id) ?? 0;
  }
  countAbove(bound: number[]): number {
    return this.list.filter(({ score }) => {
      for (let i = 0; i < bound.length; i++) {
        if (score[i] !== bound[i]) return score[i]! > bound[i]!;
      }
      return false;
    }).length;
  }
}

/** A store that keeps writes in memory and can be told to fail. */
class MemoryStore implements ScoreStore {
  rows = new Map<string, { board: string; id: string; score: Score }>();
  commits: StoreWrite[][] = [];
  failNext = false;
  closed = false;
  load() {
    return [...this.rows.values()];
  }
  commit(writes: readonly StoreWrite[]) {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("disk full");
    }
    this.commits.push([...writes]);
    for (const { board, id, score } of writes) {
      if (score === null) this.rows.delete(`${board}/${id}`);
      else this.rows.set(`${board}/${id}`, { board, id, score });
    }
  }
  close() {
    this.closed = true;
  }
}

/** A scoreboard whose group commits run only when the test says so. */
function manualBoard(store = new MemoryStore(), maxBatch?: number) {
  const queued: (() => void)[] = [];
  const board = new Scoreboard({
    store,
    schedule: (flush) => queued.push(flush),
    ...(maxBatch === undefined ? {} : { maxBatch }),
  });
  const endTurn = () => {
    for (const flush of queued.splice(0)) flush();
  };
  return { board, store, endTurn };
}

Deno.test("ScoreTree ranks larger scores first, tier by tier, ties by id ascending", () => {
  const tree = new ScoreTree();
  tree.set("b", s(10, 1));
  tree.set("a", s(10, 1));
  tree.set("c", s(10, 2));
  tree.set("d", s(11));
  tree.set("e", s(10, 1, 0, -1));
  tree.set("B", s(10, 1)); // "B" < "a" < "b" in code-unit order
  assert.deepEqual([...tree.entries()].map((e) => e.id), ["d", "c", "B", "a", "b", "e"]);
  assert.equal(tree.rank("a"), 4);
  assert.equal(tree.rank("nobody"), 0);
  assert.deepEqual(tree.at(2), { id: "c", rank: 2, score: [10, 2, 0, 0] });
  assert.equal(tree.at(0), undefined);
  assert.equal(tree.at(7), undefined);
  assert.equal(tree.countAbove([10]), 1);
  assert.equal(tree.countAbove([10, 1]), 2);
  assert.equal(tree.countAbove([10, 1, 0, 0]), 2);
  assert.equal(tree.countAbove([10, 1, 0, -1]), 5);
  assert.equal(tree.set("d", s(1)), 6, "a new score moves the entry");
  assert.equal(tree.set("d", s(1)), 6, "an unchanged score keeps it");
  assert.equal(tree.delete("c"), 1);
  assert.equal(tree.delete("c"), 0);
  assert.equal(tree.size, 5);
});

Deno.test("ScoreTree keeps ranks right through splits and merges of many levels", () => {
  const tree = new ScoreTree();
  const model = new SortedModel();
  const n = 20_000;
  // Insert in a scrambled order (7919 is coprime with n), then delete most of it.
  for (let i = 0; i < n; i++) {
    const k = (i * 7919) % n;
    tree.set(`u${k}`, s(k % 1000, k));
  }
  const ids = [...tree.entries()];
  assert.equal(ids.length, n);
  for (let i = 1; i < ids.length; i++) {
    assert.ok(rankOrder(ids[i - 1]!.score, ids[i - 1]!.id, ids[i]!.score, ids[i]!.id) < 0);
  }
  for (let k = 0; k < n; k += 97) assert.equal(tree.at(tree.rank(`u${k}`))?.id, `u${k}`);
  for (let i = 0; i < n; i++) {
    const k = (i * 7919) % n;
    if (k % 10 !== 0) assert.ok(tree.delete(`u${k}`) > 0);
  }
  for (const entry of tree.entries()) model.set(entry.id, entry.score);
  assert.equal(tree.size, n / 10);
  for (const { id } of model.list) assert.equal(tree.rank(id), model.rank(id));
  assert.deepEqual(tree.slice(1, 5).map((e) => e.id), model.list.slice(0, 5).map((e) => e.id));
});

Deno.test("ScoreTree.fromSorted builds a tree that later sets and deletes keep right", () => {
  const model = new SortedModel();
  for (let i = 0; i < 5000; i++) model.set(`u${i}`, s(i % 300, i % 7));
  const tree = ScoreTree.fromSorted(model.list);
  assert.equal(tree.size, 5000);
  for (const { id } of model.list) assert.equal(tree.rank(id), model.rank(id));
  for (let i = 0; i < 5000; i++) {
    const id = `u${(i * 7919) % 5000}`;
    if (i % 3 === 0) assert.equal(tree.set(id, s(i % 11, 1)), model.set(id, s(i % 11, 1)));
    else assert.equal(tree.delete(id), model.delete(id));
  }
  assert.deepEqual([...tree.entries()].map(({ id, score }) => ({ id, score })), model.list);
  assert.equal(ScoreTree.fromSorted([]).size, 0);
  assert.throws(
    () => ScoreTree.fromSorted([{ id: "a", score: s(1) }, { id: "b", score: s(2) }]),
    /out of rank order/,
  );
  assert.throws(
    () => ScoreTree.fromSorted([{ id: "a", score: s(2) }, { id: "a", score: s(1) }]),
    /an id repeats/,
  );
});

Deno.test("ScoreTree agrees with a sorted-array model on any sequence of sets and deletes", () => {
  const op = fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant("set" as const),
        id: fc.integer({ min: 0, max: 3000 }),
        // Few distinct tier values: plenty of ties on some tiers, and on all four.
        score: fc.array(fc.integer({ min: -2, max: 2 }), { minLength: 4, maxLength: 4 }),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant("del" as const),
        id: fc.integer({ min: 0, max: 3000 }),
      }),
      weight: 2,
    },
  );
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 8000, size: "max" }),
      fc.array(fc.integer({ min: -3, max: 3 }), {
        minLength: 1,
        maxLength: 4,
      }),
      (ops, bound) => {
        const tree = new ScoreTree();
        const model = new SortedModel();
        for (const o of ops) {
          const id = `id${o.id}`;
          if (o.kind === "set") {
            const score = o.score as unknown as Score;
            assert.equal(tree.set(id, score), model.set(id, score));
          } else {
            assert.equal(tree.delete(id), model.delete(id));
          }
        }
        assert.equal(tree.size, model.list.length);
        assert.deepEqual(
          [...tree.entries()].map(({ id, score }) => ({ id, score })),
          model.list,
        );
        for (const { id } of model.list) assert.equal(tree.rank(id), model.rank(id));
        const middle = Math.max(1, model.list.length >> 1);
        assert.deepEqual(
          tree.slice(middle, 70).map((e) => e.id),
          model.list.slice(middle - 1, middle + 69).map((e) => e.id),
        );
        assert.equal(tree.countAbove(bound), model.countAbove(bound));
      },
    ),
    { numRuns: 20 },
  );
});

Deno.test("Scoreboard replies carry ranks, previous values, neighbours and tier-0 distances", () => {
  const { board } = manualBoard();
  assert.deepEqual(board.set("b", "ann", s(50)), {
    id: "ann",
    rank: 1,
    score: [50, 0, 0, 0],
    total: 1,
  });
  board.set("b", "bob", s(80));
  board.set("b", "cy", s(30));
  assert.deepEqual(board.set("b", "ann", s(90)), {
    id: "ann",
    rank: 1,
    score: [90, 0, 0, 0],
    total: 3,
    previous: { rank: 2, score: [50, 0, 0, 0] },
  });
  assert.deepEqual(board.get("b", "bob"), {
    id: "bob",
    rank: 2,
    score: [80, 0, 0, 0],
    total: 3,
    above: { id: "ann", rank: 1, score: [90, 0, 0, 0], distance: 10 },
    below: { id: "cy", rank: 3, score: [30, 0, 0, 0], distance: 50 },
  });
  const top = board.get("b", "ann");
  assert.equal(top.above, undefined);
  assert.equal(top.below?.id, "bob");
  assert.deepEqual(board.get("b", "zed"), { id: "zed", rank: null, score: null, total: 3 });
  assert.deepEqual(board.get("nowhere", "x"), { id: "x", rank: null, score: null, total: 0 });
  assert.deepEqual(board.setTier("b", "cy", 1, 7).score, [30, 7, 0, 0]);
  assert.deepEqual(board.setTier("b", "new", 2, 5).score, [0, 0, 5, 0]);
  assert.deepEqual(board.del("b", "bob"), { id: "bob", deleted: true, rank: 2, total: 3 });
  assert.deepEqual(board.del("b", "bob"), { id: "bob", deleted: false, total: 3 });
  assert.equal(board.entries, 3);
});

Deno.test("Scoreboard ranges by rank, by score bounds and around an id", () => {
  const { board } = manualBoard();
  for (let i = 1; i <= 20; i++) board.set("b", `p${i}`, s(i * 10, i % 2));
  const ids = (reply: { entries: { id: string }[] }) => reply.entries.map((e) => e.id);
  assert.deepEqual(ids(board.byRank("b", 1, 3)), ["p20", "p19", "p18"]);
  assert.deepEqual(board.byRank("b", 19, 5).entries.map((e) => e.rank), [19, 20]);
  assert.deepEqual(board.byRank("b", 50, 5), { board: "b", total: 20, entries: [] });
  assert.deepEqual(ids(board.byScore("b", [150], [180], 10)), ["p18", "p17", "p16", "p15"]);
  assert.deepEqual(ids(board.byScore("b", [170, 1], [190, 0], 10)), ["p18", "p17"]);
  assert.deepEqual(ids(board.byScore("b", undefined, [25], 2)), ["p2", "p1"]);
  assert.deepEqual(ids(board.byScore("b", [185], undefined, 10)), ["p20", "p19"]);
  assert.deepEqual(ids(board.byScore("b", [150], [180], 2)), ["p18", "p17"]);
  assert.deepEqual(ids(board.around("b", "p10", 2, 1)), ["p12", "p11", "p10", "p9"]);
  assert.deepEqual(ids(board.around("b", "p20", 2, 1)), ["p20", "p19"]);
  assert.deepEqual(board.around("b", "nobody", 2, 2).entries, []);
});

Deno.test("Scoreboard commits the writes of one turn in one transaction, then settles", async () => {
  const { board, store, endTurn } = manualBoard();
  assert.equal(board.committed(), undefined);
  board.set("b", "ann", s(1));
  board.set("b", "bob", s(2));
  board.set("b", "ann", s(3));
  board.set("c", "x", s(1));
  board.del("c", "x"); // created and deleted within the turn: nothing to write
  const done = board.committed();
  assert.ok(done instanceof Promise);
  let settled = false;
  done.then(() => settled = true);
  await Promise.resolve();
  assert.equal(settled, false, "nothing is acknowledged before the commit");
  assert.equal(store.commits.length, 0);
  endTurn();
  await done;
  assert.equal(settled, true);
  assert.deepEqual(store.commits, [[
    { board: "b", id: "ann", score: [3, 0, 0, 0] },
    { board: "b", id: "bob", score: [2, 0, 0, 0] },
  ]]);
  assert.equal(board.committed(), undefined);
  board.set("b", "ann", s(3));
  assert.equal(board.committed(), undefined, "an unchanged score writes nothing");
});

Deno.test("Scoreboard bounds a batch: a full batch commits at once", () => {
  const { board, store } = manualBoard(new MemoryStore(), 10);
  for (let i = 0; i < 25; i++) board.set("b", `u${i}`, s(i));
  assert.deepEqual(store.commits.map((c) => c.length), [10, 10]);
  board.flush();
  assert.deepEqual(store.commits.map((c) => c.length), [10, 10, 5]);
});

Deno.test("Scoreboard undoes a batch the store failed to commit, and rejects its waiters", async () => {
  const store = new MemoryStore();
  const { board, endTurn } = manualBoard(store);
  board.set("b", "ann", s(5));
  board.set("b", "bob", s(4));
  endTurn();
  await board.committed();
  board.set("b", "ann", s(1));
  board.del("b", "bob");
  board.set("b", "cy", s(9));
  board.set("new", "x", s(1));
  store.failNext = true;
  const done = board.committed()!;
  endTurn();
  await assert.rejects(done, /disk full/);
  assert.deepEqual([board.get("b", "ann").score, board.get("b", "bob").rank], [[5, 0, 0, 0], 2]);
  assert.equal(board.get("b", "cy").rank, null);
  assert.equal(board.size("new"), 0);
  assert.equal(board.entries, 2);
  assert.equal(board.boards, 1);
});

Deno.test("Scoreboard rebuilds every board from its SQLite file; close flushes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage-index-" });
  try {
    const path = join(dir, "nested", "rank.db");
    const first = new Scoreboard({ store: openSqliteScoreStore(path), schedule: () => {} });
    for (let i = 0; i < 500; i++) first.set(`b${i % 3}`, `u${i}`, s(i % 50, i));
    first.del("b0", "u0");
    first.close();
    assert.throws(() => first.set("b", "x", s(1)), TypeError);
    const second = new Scoreboard({ store: openSqliteScoreStore(path) });
    assert.equal(second.entries, 499);
    assert.equal(second.boards, 3);
    assert.equal(second.get("b0", "u0").rank, null);
    const top = second.byRank("b1", 1, 2).entries;
    assert.deepEqual(top.map((e) => e.id), ["u499", "u349"]);
    assert.deepEqual(top[0]!.score, [49, 499, 0, 0]);
    second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
