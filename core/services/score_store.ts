/**
 * Where the index service keeps its boards: the {@link ScoreStore} interface
 * and its SQLite adapter (`node:sqlite`, the only runtime calls of the index).
 *
 * Schema (version 1, `PRAGMA user_version`): one table
 * `entries(board, id, s0, s1, s2, s3)` keyed by `(board, id)`. The database is
 * in WAL mode with `synchronous = FULL`: a committed transaction has reached
 * the disk (fsync) before `commit` returns, so it survives a process kill and
 * a power cut.
 *
 * @module
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Score } from "./score_tree.ts";

/** One stored entry. */
export interface StoredEntry {
  board: string;
  id: string;
  score: Score;
}

/** One change to store: a new score, or `null` to delete the entry. */
export interface StoreWrite {
  board: string;
  id: string;
  score: Score | null;
}

/** Durable storage of boards, written in batches. */
export interface ScoreStore {
  /** Every stored entry, in no particular order. */
  load(): Iterable<StoredEntry>;
  /**
   * Applies the writes in one transaction: all of them or, when it throws,
   * none. Durable when it returns.
   */
  commit(writes: readonly StoreWrite[]): void;
  /** Closes the store (idempotent). */
  close(): void;
}

const SCHEMA_VERSION = 1;

/** A row of `entries`, as an array. */
type Row = [board: string, id: string, s0: number, s1: number, s2: number, s3: number];

/**
 * Opens (creating it and its folder if missing) the SQLite database at `path`
 * as a {@link ScoreStore}. `":memory:"` opens a private in-memory database.
 *
 * @throws Error when the file is not a database or has a newer schema
 * @example
 * ```ts
 * import { openSqliteScoreStore } from "./score_store.ts";
 * const store = openSqliteScoreStore(":memory:");
 * store.commit([{ board: "b", id: "ann", score: [1, 0, 0, 0] }]);
 * if ([...store.load()].length !== 1) throw new Error("not stored");
 * store.close();
 * ```
 */
export function openSqliteScoreStore(path: string): ScoreStore {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    const version = Number(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Index database ${path} has schema version ${version}; this Stage knows ${SCHEMA_VERSION}`,
      );
    }
    db.exec(`CREATE TABLE IF NOT EXISTS entries (
      board TEXT NOT NULL, id TEXT NOT NULL,
      s0 REAL NOT NULL, s1 REAL NOT NULL, s2 REAL NOT NULL, s3 REAL NOT NULL,
      PRIMARY KEY (board, id)) WITHOUT ROWID`);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  } catch (error) {
    db.close();
    throw error;
  }
  const upsert = db.prepare("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)");
  const remove = db.prepare("DELETE FROM entries WHERE board = ? AND id = ?");
  let open = true;
  return {
    *load() {
      const all = db.prepare("SELECT board, id, s0, s1, s2, s3 FROM entries");
      // Rows as arrays: twice as fast as objects for a whole-table read (missing from the types).
      (all as unknown as { setReturnArrays(on: boolean): void }).setReturnArrays(true);
      for (const row of all.all() as unknown as Row[]) {
        yield { board: row[0], id: row[1], score: [row[2], row[3], row[4], row[5]] };
      }
    },
    commit(writes) {
      if (writes.length === 0) return;
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const { board, id, score } of writes) {
          if (score === null) remove.run(board, id);
          else upsert.run(board, id, score[0], score[1], score[2], score[3]);
        }
        db.exec("COMMIT");
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
    },
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}
