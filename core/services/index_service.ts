/**
 * The index service stage (DESIGN.md §5): real-time scoreboards persisted in
 * SQLite. Scripts send `stage.signal("rank:s?board=cb", id, score)` or
 * `await stage.request("rank:g?board", id)`; the message id is the verb
 * (`s|set`, `d|del`, `g|get`, `r|range`, `f|forEach`), the `?query` the board
 * (`board/tier` for a set of one tier). Bad arguments throw a `TypeError` or
 * `RangeError` naming the problem; it goes back to the sender.
 *
 * Replies wait for the group commit of the turn they were handled in: a reply
 * never reports an update that is not on disk yet.
 *
 * @module
 */
import type { Address } from "../api/messaging.ts";
import type { Score } from "./score_tree.ts";
import { openSqliteScoreStore, type ScoreStore } from "./score_store.ts";
import { type RangeReply, Scoreboard } from "./scoreboard.ts";
import type { ServiceFactory } from "./service_stage.ts";

/** Board names: letters, digits, `_`, `.` and `-`, 1 to 64 of them. */
const BOARD = /^[\w.-]{1,64}$/;
/** The longest id, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;
/** The most entries one `range` reply holds. */
export const MAX_RANGE = 1000;
/** The most entries one `forEach` delivers. */
export const MAX_FOR_EACH = 10_000;
/** `forEach` messages sent per turn of the main thread. */
const FOR_EACH_SLICE = 256;

/** The verbs and their one-letter names. */
const SHORT = { s: "set", d: "del", g: "get", r: "range", f: "forEach" } as const;
type VerbName = (typeof SHORT)[keyof typeof SHORT];

/** A request as a verb sees it: the board, the tier of `board/tier`, the reply address. */
interface Request {
  /** `rank:set` (for error messages). */
  name: string;
  board: string;
  tier?: 0 | 1 | 2 | 3;
  reply?: Address;
}

type Verb = (request: Request, ...args: unknown[]) => unknown;

/** What {@link indexService} may change (tests). */
export interface IndexServiceOptions {
  /** Opens the store at the configured path (default: SQLite). */
  openStore?: (path: string) => ScoreStore;
  /** Distinct entries per transaction at most (default 1024). */
  maxBatch?: number;
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(", ")}]`;
  return typeof value === "object" && value !== null ? "an object" : String(value);
}

function parseQuery(name: string, query: string | undefined, tierAllowed: boolean): Request {
  if (query === undefined) {
    throw new TypeError(`${name}: no board; address it as "${name}?board"`);
  }
  const slash = query.indexOf("/");
  const board = slash < 0 ? query : query.slice(0, slash);
  if (!BOARD.test(board)) {
    throw new TypeError(
      `${name}?${query}: invalid board name ${describe(board)} (1-64 of A-Z a-z 0-9 _ . -)`,
    );
  }
  if (slash < 0) return { name, board };
  const tier = query.slice(slash + 1);
  if (!tierAllowed) throw new TypeError(`${name}?${query}: only set takes a tier ("board/tier")`);
  if (!/^[0-3]$/.test(tier)) {
    throw new RangeError(`${name}?${query}: the tier must be 0, 1, 2 or 3; got ${describe(tier)}`);
  }
  return { name, board, tier: Number(tier) as 0 | 1 | 2 | 3 };
}

/** Ids are non-empty strings; a safe integer is taken as its decimal string. */
function toId(name: string, value: unknown): string {
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(
      `${name}: the id must be a non-empty string or a safe integer; got ${describe(value)}`,
    );
  }
  if (value.length > MAX_ID_LENGTH) {
    throw new RangeError(`${name}: the id is ${value.length} characters; at most ${MAX_ID_LENGTH}`);
  }
  return value;
}

function toTier(name: string, what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${name}: ${what} must be a finite number; got ${describe(value)}`);
  }
  return value === 0 ? 0 : value; // -0 ranks and stores as 0
}

/** 1..4 finite numbers, tier 0 first (a number is tier 0 alone). */
function toTiers(name: string, what: string, value: unknown): number[] {
  if (typeof value === "number") return [toTier(name, what, value)];
  if (!Array.isArray(value) || value.length < 1 || value.length > 4) {
    throw new TypeError(
      `${name}: ${what} must be a number or an array of 1 to 4 numbers; got ${describe(value)}`,
    );
  }
  return value.map((tier, i) => toTier(name, `${what}[${i}]`, tier));
}

function toScore(name: string, value: unknown): Score {
  const tiers = toTiers(name, "the score", value);
  while (tiers.length < 4) tiers.push(0);
  return tiers as unknown as Score;
}

function toCount(name: string, what: string, value: unknown, fallback: number, max: number) {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw new RangeError(
      `${name}: ${what} must be an integer from 0 to ${max}; got ${describe(value)}`,
    );
  }
  return value as number;
}

function toRank(name: string, value: unknown): number {
  if (value === undefined) return 1;
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(`${name}: the rank must be an integer ≥ 1; got ${describe(value)}`);
  }
  return value as number;
}

/** The object forms of `range`, by their keys. */
function rangeOf(scores: Scoreboard, request: Request, spec: Record<string, unknown>): RangeReply {
  const { name, board } = request;
  const known = ["rank", "count", "min", "max", "limit", "around", "before", "after"];
  const unknown = Object.keys(spec).find((key) => !known.includes(key));
  if (unknown !== undefined) throw new TypeError(`${name}: unknown range option "${unknown}"`);
  if ("around" in spec) {
    return scores.around(
      board,
      toId(name, spec.around),
      toCount(name, "before", spec.before, 5, MAX_RANGE),
      toCount(name, "after", spec.after, 5, MAX_RANGE),
    );
  }
  if ("min" in spec || "max" in spec || "limit" in spec) {
    return scores.byScore(
      board,
      spec.min === undefined ? undefined : toTiers(name, "min", spec.min),
      spec.max === undefined ? undefined : toTiers(name, "max", spec.max),
      toCount(name, "the limit", spec.limit, 100, MAX_RANGE),
    );
  }
  return scores.byRank(
    board,
    toRank(name, spec.rank),
    toCount(name, "the count", spec.count, 10, MAX_RANGE),
  );
}

/** Builds the index service with `options` (the `index` kind uses the defaults). */
export function indexService(options: IndexServiceOptions = {}): ServiceFactory {
  const openStore = options.openStore ?? openSqliteScoreStore;
  return ({ api, clock, log, metrics, config }) => {
    const path = config.indexes[api.id]?.path;
    if (path === undefined) throw new TypeError(`index+${api.id}: no "path" configured`);
    const started = clock.now();
    const scores = new Scoreboard({
      store: openStore(path),
      ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
    });
    log.info("Index {id}: {entries} entries on {boards} boards loaded from {path} in {ms} ms", {
      id: api.id,
      entries: scores.entries,
      boards: scores.boards,
      path,
      ms: Math.round(clock.now() - started),
    });
    const requests = metrics.counter(
      "stage_index_requests_total",
      "Requests handled by an index stage, by verb.",
      ["stage", "verb"],
    );
    const gauges = [
      metrics.gaugeFn("stage_index_entries", "Entries on the boards of an index stage.", () => [
        { labels: { stage: api.id }, value: scores.entries },
      ]),
      metrics.counterFn(
        "stage_index_commits_total",
        "Transactions committed by an index stage.",
        () => [
          { labels: { stage: api.id }, value: scores.commits },
        ],
      ),
    ];
    /** `forEach` deliveries still sending, by their next slice. */
    const sending = new Set<{ timer: { cancel(): void } | undefined; send(all: boolean): void }>();
    let stopped = false;

    const verbs = {
      set({ name, board, tier }, id, score) {
        if (tier === undefined) return scores.set(board, toId(name, id), toScore(name, score));
        return scores.setTier(board, toId(name, id), tier, toTier(name, "the score", score));
      },
      del({ name, board }, id) {
        return scores.del(board, toId(name, id));
      },
      get({ name, board }, id) {
        return scores.get(board, toId(name, id));
      },
      range(request, first, second, third) {
        const { name, board } = request;
        if (typeof first === "object" && first !== null && !Array.isArray(first)) {
          return rangeOf(scores, request, first as Record<string, unknown>);
        }
        if (typeof first === "string") {
          return scores.around(
            board,
            toId(name, first),
            toCount(name, "before", second, 5, MAX_RANGE),
            toCount(name, "after", third, 5, MAX_RANGE),
          );
        }
        return scores.byRank(
          board,
          toRank(name, first),
          toCount(name, "the count", second, 10, MAX_RANGE),
        );
      },
      forEach({ name, board, reply }, from, count) {
        if (reply === undefined) {
          throw new TypeError(`${name}?${board}: forEach needs a reply waitfor ("${name}?b=cb")`);
        }
        const { entries } = scores.byRank(
          board,
          toRank(name, from),
          toCount(name, "the count", count, 100, MAX_FOR_EACH),
        );
        // Sent once the turn's writes are durable (see handle), a slice per turn.
        return () => {
          let next = 0;
          const delivery = {
            timer: undefined as { cancel(): void } | undefined,
            send(all: boolean) {
              delivery.timer = undefined;
              const end = all ? entries.length : Math.min(entries.length, next + FOR_EACH_SLICE);
              for (; next < end; next++) {
                api.deliverTo(reply, [entries[next], entries.length - next - 1]);
              }
              if (next === entries.length) sending.delete(delivery);
              else delivery.timer = clock.setTimeout(() => delivery.send(stopped), 0);
            },
          };
          if (entries.length === 0) return api.deliverTo(reply, [null, 0]);
          sending.add(delivery);
          delivery.send(stopped);
        };
      },
    } satisfies Record<VerbName, Verb>;

    const handle = (verb: VerbName) => (...args: unknown[]) => {
      const context = api.context;
      const name = `${api.id}:${verb}`;
      if (stopped) throw new TypeError(`${name}: the index stage is stopped`);
      requests.inc({ stage: api.id, verb });
      const request = parseQuery(name, context?.query, verb === "set");
      if (context?.reply !== undefined) {
        const { stage, worker, id } = context.reply;
        request.reply = { stage, worker, id };
      }
      const result: unknown = (verbs[verb] as Verb)(request, ...args);
      // forEach starts sending, and every other verb replies, once what it saw is durable.
      const settle = () => typeof result === "function" ? void result() : result;
      const pending = scores.committed();
      return pending === undefined ? settle() : pending.then(settle);
    };
    for (const [short, verb] of Object.entries(SHORT) as [keyof typeof SHORT, VerbName][]) {
      api.waitfor(short, handle(verb));
      api.waitfor(verb, handle(verb));
    }
    return {
      stop() {
        stopped = true;
        for (const delivery of sending) {
          delivery.timer?.cancel();
          delivery.send(true);
        }
        scores.close();
        for (const gauge of gauges) gauge.remove();
        log.info("Index {id}: closed {path}", { id: api.id, path });
      },
    };
  };
}

/** Starts an `index+<id>` stage. */
export const startIndexService: ServiceFactory = indexService();
