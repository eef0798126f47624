// deno-lint-ignore-file no-console
/**
 * `deno task bench index [--quick]`: the index service's scoreboard at 1,000,000
 * entries (100,000 with `--quick`) against the same operations done directly in
 * SQLite with an index on the score, in the same run. One JSON line per scenario:
 * - set/s: Scoreboard (B+tree + write-through in transactions of 1,024) vs SQL
 *   upserts in transactions of 1,024 (both WAL, synchronous = FULL);
 * - rank of an id/s: `get` (rank, score and both neighbours) vs
 *   `SELECT 1 + COUNT(*) … WHERE score > (score of the id)`;
 * - top-100/s vs `ORDER BY score DESC LIMIT 100`;
 * - a page of 100 at a random rank/s vs `… LIMIT 100 OFFSET rank - 1`;
 * - rebuild from the database at start vs reading the rows in SQL order;
 * - rank of an id end to end: a script's `stage.request("rank:g?bench", id)`
 *   (64 in flight) through a real process runtime with an index stage on the
 *   same database, vs the SQL rank query.
 * Scores are a shuffled 0..n-1, so no two tie and both sides agree on every rank
 * (checked on a sample).
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openSqliteScoreStore } from "../../core/services/score_store.ts";
import type { Score } from "../../core/services/score_tree.ts";
import { Scoreboard } from "../../core/services/scoreboard.ts";
import { StageClient } from "../../core/client/mod.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";

const BATCH = 1024;
const BOARD = "bench";

/** A small seeded PRNG (mulberry32), so every run uses the same data. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `op(i)` until `count` calls or `budgetMs`, whichever comes first; returns calls/s. */
function rate(op: (i: number) => void, count: number, budgetMs: number): number {
  const start = performance.now();
  let i = 0;
  for (; i < count; i++) {
    op(i);
    if ((i & 15) === 15 && performance.now() - start > budgetMs) {
      i++;
      break;
    }
  }
  return i / ((performance.now() - start) / 1000);
}

const round = (n: number) => Math.round(n);
const ratio = (a: number, b: number) => Number((a / b).toFixed(a / b >= 10 ? 0 : 2));

const RANKER = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const { ids, rounds, inflight } = data;
  let next = 0;
  let sink = 0;
  const lane = async () => {
    while (next < rounds) {
      const reply = await stage.request("rank:g?bench", ids[next++ % ids.length]);
      sink += reply.rank;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inflight }, lane));
  socket.commit({ ms: performance.now() - start, rounds, sink });
});
`;

/** Rank lookups per second from a script stage to an index stage on `path`. */
async function rankThroughStage(path: string, ids: string[]): Promise<number> {
  await using fixture = await startFixture({
    config: { "#startup": [["index+rank", "script+start"]], "index+rank": { path } },
    scripts: { "start.ts": RANKER },
    workers: 1,
  });
  await using client = await StageClient.connect({ port: fixture.port(), codec: "json" });
  const measure = async (rounds: number) => {
    await client.send({ ids, rounds, inflight: 64 });
    const result = await client.next<{ ms: number; sink: number }>(120_000);
    if (!(result.sink > 0)) throw new Error("the ranks did not come back");
    return rounds / (result.ms / 1000);
  };
  await measure(5_000); // warm-up
  return await measure(100_000);
}

export async function run(args: string[]): Promise<void> {
  const n = args.includes("--quick") ? 100_000 : 1_000_000;
  const print = (line: Record<string, unknown>) =>
    console.log(JSON.stringify({ bench: "index", entries: n, ...line }));
  const random = prng(42);
  const scores = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [scores[i], scores[j]] = [scores[j]!, scores[i]!];
  }
  const ids = scores.map((_, i) => `user${i}`);
  const probes = Array.from({ length: 65_536 }, () => Math.floor(random() * n));
  const dir = await Deno.makeTempDir({ prefix: "stage-index-bench-" });
  try {
    // Ours: the Scoreboard the service runs, flushing every BATCH distinct writes.
    const oursPath = join(dir, "index.db");
    let board = new Scoreboard({
      store: openSqliteScoreStore(oursPath),
      schedule: () => {},
      maxBatch: BATCH,
    });
    const score = (value: number): Score => [value, 0, 0, 0];
    let t = performance.now();
    for (let i = 0; i < n; i++) board.set(BOARD, ids[i]!, score(scores[i]!));
    board.flush();
    const oursSet = n / ((performance.now() - t) / 1000);

    // Baseline: one table, an index on the score, the same batches and durability.
    const db = new DatabaseSync(join(dir, "sql.db"));
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
    db.exec("CREATE TABLE scores (id TEXT PRIMARY KEY, score REAL NOT NULL) WITHOUT ROWID");
    db.exec("CREATE INDEX scores_by_score ON scores (score)");
    const upsert = db.prepare("INSERT OR REPLACE INTO scores VALUES (?, ?)");
    t = performance.now();
    for (let i = 0; i < n; i += BATCH) {
      db.exec("BEGIN");
      for (let j = i; j < Math.min(n, i + BATCH); j++) upsert.run(ids[j]!, scores[j]!);
      db.exec("COMMIT");
    }
    const sqlSet = n / ((performance.now() - t) / 1000);
    print({
      scenario: "set (write-through, transactions of 1024)",
      sets_per_s: round(oursSet),
      baseline_sql_upserts_per_s: round(sqlSet),
      ratio: ratio(oursSet, sqlSet),
    });

    const rankSql = db.prepare(
      "SELECT 1 + COUNT(*) AS rank FROM scores WHERE score > (SELECT score FROM scores WHERE id = ?)",
    );
    for (const p of probes.slice(0, 20)) {
      const sql = Number((rankSql.get(ids[p]!) as { rank: number }).rank);
      const ours = board.get(BOARD, ids[p]!).rank;
      if (sql !== ours) throw new Error(`rank of ${ids[p]}: SQL says ${sql}, the board ${ours}`);
    }
    let sink = 0;
    const oursRank = rate(
      (i) => {
        sink += board.get(BOARD, ids[probes[i % probes.length]!]!).rank!;
      },
      500_000,
      3000,
    );
    const sqlRank = rate(
      (i) => {
        sink += Number((rankSql.get(ids[probes[i % probes.length]!]!) as { rank: number }).rank);
      },
      100_000,
      3000,
    );
    print({
      scenario: "rank of an id (get: rank, score, neighbours) vs COUNT(*) WHERE score >",
      ranks_per_s: round(oursRank),
      baseline_sql_ranks_per_s: round(sqlRank),
      ratio: ratio(oursRank, sqlRank),
    });

    const topSql = db.prepare("SELECT id, score FROM scores ORDER BY score DESC LIMIT 100");
    const oursTop = rate(
      () => {
        sink += board.byRank(BOARD, 1, 100).entries.length;
      },
      200_000,
      2000,
    );
    const sqlTop = rate(
      () => {
        sink += topSql.all().length;
      },
      200_000,
      2000,
    );
    print({
      scenario: "top 100 vs ORDER BY score DESC LIMIT 100",
      tops_per_s: round(oursTop),
      baseline_sql_tops_per_s: round(sqlTop),
      ratio: ratio(oursTop, sqlTop),
    });

    const pageSql = db.prepare(
      "SELECT id, score FROM scores ORDER BY score DESC LIMIT 100 OFFSET ?",
    );
    const oursPage = rate(
      (i) => {
        sink += board.byRank(BOARD, probes[i % probes.length]! + 1, 100).entries.length;
      },
      200_000,
      2000,
    );
    const sqlPage = rate(
      (i) => {
        sink += pageSql.all(probes[i % probes.length]!).length;
      },
      100_000,
      3000,
    );
    print({
      scenario: "page of 100 at a random rank vs LIMIT 100 OFFSET rank - 1",
      pages_per_s: round(oursPage),
      baseline_sql_pages_per_s: round(sqlPage),
      ratio: ratio(oursPage, sqlPage),
    });

    board.close();
    t = performance.now();
    board = new Scoreboard({ store: openSqliteScoreStore(oursPath) });
    const rebuildMs = performance.now() - t;
    t = performance.now();
    sink += db.prepare("SELECT id, score FROM scores ORDER BY score DESC").all().length;
    const readMs = performance.now() - t;
    print({
      scenario: "rebuild at start (load + build) vs reading every row in rank order in SQL",
      rebuild_ms: round(rebuildMs),
      baseline_sql_read_ms: round(readMs),
      ratio: ratio(rebuildMs, readMs),
    });
    if (board.entries !== n || sink < 0) throw new Error(`rebuilt ${board.entries} of ${n}`);
    board.close();

    // End to end: the same rank lookups as a script makes them, through the bus.
    const perSecond = await rankThroughStage(oursPath, probes.slice(0, 1000).map((p) => ids[p]!));
    print({
      scenario:
        "rank of an id end to end (stage.request from a worker, 64 in flight) vs COUNT(*) WHERE score >",
      ranks_per_s: round(perSecond),
      baseline_sql_ranks_per_s: round(sqlRank),
      ratio: ratio(perSecond, sqlRank),
    });
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await run(Deno.args);
