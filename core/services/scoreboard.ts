/**
 * The boards of an index stage: one {@link ScoreTree} per board in memory,
 * rebuilt from a {@link ScoreStore} when opened and written through to it with
 * group commit — the writes of one turn are collected and committed in one
 * transaction, and {@link Scoreboard.committed} settles once they are durable,
 * so a reply sent after it never reports an update a crash could lose.
 *
 * Every query returns plain data (see the reply types below).
 *
 * @module
 */
import type { ScoreStore, StoreWrite } from "./score_store.ts";
import { comparePrefix, type RankedEntry, type Score, ScoreTree } from "./score_tree.ts";

/** The reply to a set: the entry after the update, and before it if it existed. */
export interface SetReply {
  id: string;
  rank: number;
  score: Score;
  /** Entries on the board. */
  total: number;
  previous?: { rank: number; score: Score };
}

/** A neighbour in a {@link GetReply}: `distance` is the tier-0 gap to the entry asked about. */
export interface Neighbour extends RankedEntry {
  /** `above.score[0] - score[0]` or `score[0] - below.score[0]`: never negative. */
  distance: number;
}

/** The reply to a get; `rank` and `score` are `null` when the id has no entry. */
export interface GetReply {
  id: string;
  rank: number | null;
  score: Score | null;
  total: number;
  /** The entry one rank higher (absent for rank 1 or no entry). */
  above?: Neighbour;
  /** The entry one rank lower (absent for the last or no entry). */
  below?: Neighbour;
}

/** The reply to a delete: `rank` is the rank the entry had. */
export interface DelReply {
  id: string;
  deleted: boolean;
  rank?: number;
  total: number;
}

/** The reply to a range query: entries in rank order. */
export interface RangeReply {
  board: string;
  total: number;
  entries: RankedEntry[];
}

/** Everything a {@link Scoreboard} needs. */
export interface ScoreboardOptions {
  store: ScoreStore;
  /** Runs the group commit after the current turn (default: `queueMicrotask`). */
  schedule?: (flush: () => void) => void;
  /** Distinct entries written per transaction at most (default 1024); a full batch commits at once. */
  maxBatch?: number;
}

interface PendingWrite {
  board: string;
  id: string;
  /** The committed score before this batch (undefined: no entry). */
  before: Score | undefined;
  after: Score | undefined;
}

interface Batch {
  writes: Map<string, PendingWrite>;
  done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

const NO_ENTRIES: RankedEntry[] = [];

/** The boards of one index stage. */
export class Scoreboard {
  #store: ScoreStore;
  #schedule: (flush: () => void) => void;
  #maxBatch: number;
  #boards = new Map<string, ScoreTree>();
  #entries = 0;
  #batch: Batch | undefined;
  #closed = false;
  #commits = 0;

  /** Opens the boards, loading every entry from `options.store`. */
  constructor(options: ScoreboardOptions) {
    this.#store = options.store;
    this.#schedule = options.schedule ?? queueMicrotask;
    this.#maxBatch = options.maxBatch ?? 1024;
    const loaded = new Map<string, { id: string; score: Score }[]>();
    for (const { board, id, score } of this.#store.load()) {
      let list = loaded.get(board);
      if (list === undefined) loaded.set(board, list = []);
      list.push({ id, score });
    }
    for (const [board, list] of loaded) {
      list.sort((a, b) => rankOrder(a.score, a.id, b.score, b.id));
      const tree = ScoreTree.fromSorted(list);
      this.#boards.set(board, tree);
      this.#entries += tree.size;
    }
  }

  /** Boards with at least one entry. */
  get boards(): number {
    return this.#boards.size;
  }

  /** Entries on every board. */
  get entries(): number {
    return this.#entries;
  }

  /** Transactions committed since opening. */
  get commits(): number {
    return this.#commits;
  }

  /** The entries of a board (0 for an unknown board). */
  size(board: string): number {
    return this.#boards.get(board)?.size ?? 0;
  }

  /** Sets `id`'s score on `board` (creating both as needed). */
  set(board: string, id: string, score: Score): SetReply {
    this.#open();
    let tree = this.#boards.get(board);
    if (tree === undefined) this.#boards.set(board, tree = new ScoreTree());
    const before = tree.score(id);
    const previousRank = before === undefined ? 0 : tree.rank(id);
    const rank = tree.set(id, score);
    if (before === undefined) this.#entries++;
    if (before === undefined || rankOrder(before, id, score, id) !== 0) {
      this.#record(board, id, before, score);
    }
    const reply: SetReply = { id, rank, score: [...score], total: tree.size };
    if (before !== undefined) reply.previous = { rank: previousRank, score: before };
    return reply;
  }

  /** Sets one tier of `id`'s score, keeping the others (0 for a new entry). */
  setTier(board: string, id: string, tier: 0 | 1 | 2 | 3, value: number): SetReply {
    const score = [...(this.#boards.get(board)?.score(id) ?? [0, 0, 0, 0])];
    score[tier] = value;
    return this.set(board, id, score as unknown as Score);
  }

  /** Deletes `id` from `board`. */
  del(board: string, id: string): DelReply {
    this.#open();
    const tree = this.#boards.get(board);
    const before = tree?.score(id);
    if (tree === undefined || before === undefined) {
      return { id, deleted: false, total: tree?.size ?? 0 };
    }
    const rank = tree.delete(id);
    this.#entries--;
    if (tree.size === 0) this.#boards.delete(board);
    this.#record(board, id, before, undefined);
    return { id, deleted: true, rank, total: tree.size };
  }

  /** `id`'s rank and score on `board`, with its neighbours and their tier-0 distances. */
  get(board: string, id: string): GetReply {
    const tree = this.#boards.get(board);
    const total = tree?.size ?? 0;
    const rank = tree?.rank(id) ?? 0;
    if (tree === undefined || rank === 0) return { id, rank: null, score: null, total };
    const [up, me, down] = rank === 1 ? [undefined, ...tree.slice(1, 2)] : tree.slice(rank - 1, 3);
    const reply: GetReply = { id, rank, score: me!.score, total };
    if (up !== undefined) reply.above = { ...up, distance: up.score[0] - me!.score[0] };
    if (down !== undefined) reply.below = { ...down, distance: me!.score[0] - down.score[0] };
    return reply;
  }

  /** Up to `count` entries of `board` from rank `from` (1-based) on. */
  byRank(board: string, from: number, count: number): RangeReply {
    const tree = this.#boards.get(board);
    return { board, total: tree?.size ?? 0, entries: tree?.slice(from, count) ?? NO_ENTRIES };
  }

  /**
   * Up to `limit` entries of `board` whose score lies between `min` and `max`
   * (inclusive; each a prefix of 1..4 tiers compared lexicographically with
   * the same tiers of the score; absent = unbounded), highest first.
   */
  byScore(
    board: string,
    min: readonly number[] | undefined,
    max: readonly number[] | undefined,
    limit: number,
  ): RangeReply {
    const tree = this.#boards.get(board);
    if (tree === undefined) return { board, total: 0, entries: [] };
    const from = max === undefined ? 1 : tree.countAbove(max) + 1;
    let entries = tree.slice(from, limit);
    if (min !== undefined) {
      const end = entries.findIndex((entry) => comparePrefix(entry.score, min) < 0);
      if (end >= 0) entries = entries.slice(0, end);
    }
    return { board, total: tree.size, entries };
  }

  /** `id`'s entry with up to `before` entries above it and `after` below (none if absent). */
  around(board: string, id: string, before: number, after: number): RangeReply {
    const tree = this.#boards.get(board);
    const rank = tree?.rank(id) ?? 0;
    if (tree === undefined || rank === 0) return { board, total: tree?.size ?? 0, entries: [] };
    const from = Math.max(1, rank - before);
    return { board, total: tree.size, entries: tree.slice(from, rank + after - from + 1) };
  }

  /**
   * Settles when every write made so far is committed (rejects with the
   * store's error when its batch failed: those writes were undone in memory
   * too). Undefined when nothing is pending.
   */
  committed(): Promise<void> | undefined {
    return this.#batch?.done;
  }

  /** Commits the pending batch now (a no-op when there is none). */
  flush(): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    const writes: StoreWrite[] = [];
    for (const { board, id, before, after } of batch.writes.values()) {
      if (before !== undefined || after !== undefined) {
        writes.push({ board, id, score: after ?? null });
      }
    }
    try {
      this.#store.commit(writes);
    } catch (error) {
      this.#undo(batch);
      batch.reject(error);
      return;
    }
    this.#commits++;
    batch.resolve();
  }

  /** Flushes and closes the store; later writes throw. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#store.close();
  }

  #open(): void {
    if (this.#closed) throw new TypeError("The scoreboard is closed");
  }

  #record(board: string, id: string, before: Score | undefined, after: Score | undefined): void {
    let batch = this.#batch;
    if (batch === undefined) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((ok, fail) => {
        resolve = ok;
        reject = fail;
      });
      // Someone awaits every batch; this keeps a failure nobody awaits from being fatal.
      done.catch(() => {});
      this.#batch = batch = { writes: new Map(), done, resolve, reject };
      const mine = batch;
      this.#schedule(() => {
        if (this.#batch === mine) this.flush();
      });
    }
    const key = `${board}\u0000${id}`;
    const pending = batch.writes.get(key);
    if (pending !== undefined) pending.after = after;
    else batch.writes.set(key, { board, id, before, after });
    if (batch.writes.size >= this.#maxBatch) this.flush();
  }

  /** Puts the entries of a failed batch back as they were committed. */
  #undo(batch: Batch): void {
    for (const { board, id, before, after } of batch.writes.values()) {
      let tree = this.#boards.get(board);
      if (before === undefined) {
        if (tree?.delete(id)) this.#entries--;
        if (tree?.size === 0) this.#boards.delete(board);
        continue;
      }
      if (tree === undefined) this.#boards.set(board, tree = new ScoreTree());
      if (after === undefined) this.#entries++;
      tree.set(id, before);
    }
  }
}

/** The ranking rule as a sort comparator: larger scores first, then ids ascending. */
export function rankOrder(a: Score, aId: string, b: Score, bId: string): number {
  for (let i = 0; i < 4; i++) {
    if (a[i] !== b[i]) return a[i]! > b[i]! ? -1 : 1;
  }
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}
