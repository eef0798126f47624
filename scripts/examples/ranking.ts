/// <reference types="../../core/api/globals.d.ts" />
/**
 * A leaderboard over the index stage `rank` (`"index+rank"` in `#startup`).
 *
 * Each player's score has two tiers: tier 0 is the points, tier 1 is minus the
 * time the points were reached — so of two players with equal points, the one
 * who got there first ranks higher (and equal points at the same millisecond
 * fall back to the index's rule: ids ascending).
 *
 * Run: `deno task start --config config/examples/ranking.json`, then send JSON
 * frames to 127.0.0.1:8813 (`process.args[0]` changes the address,
 * `process.args[1]` the board, default `"global"`):
 * - `{ message: "score", user, points }` → `{ message: "score", user, rank, points, previous? }`
 * - `{ message: "top", count? }` → `{ message: "top", total, players: [{ rank, user, points }] }`
 * - `{ message: "me", user }` → `{ message: "me", user, rank, points, total, ahead?, behind? }`
 *   (`ahead`/`behind`: the next player up/down and the points between you)
 * - `{ message: "near", user }` → `{ message: "near", players }`: two above, two below
 * - `{ message: "quit", user }` → `{ message: "quit", user, removed }`
 */

const LISTEN = process.args[0] ?? "127.0.0.1:8813";
const BOARD = process.args[1] ?? "global";

// What the index stage replies: Stage.Index.* in the ambient declarations.
type SetReply = Stage.Index.SetReply;
type GetReply = Stage.Index.GetReply;
type RangeReply = Stage.Index.RangeReply;

const player = (entry: Stage.RankedEntry) => ({
  rank: entry.rank,
  user: entry.id,
  points: entry.score[0],
});

async function handle(data: Stage.Data): Promise<unknown> {
  switch (data?.message) {
    case "score": {
      if (typeof data.points !== "number") throw new TypeError("points must be a number");
      // Tier 1: the earlier, the higher.
      const reply = await stage.request<SetReply>(`rank:set?${BOARD}`, data.user, [
        data.points,
        -Date.now(),
      ]);
      return {
        message: "score",
        user: reply.id,
        rank: reply.rank,
        points: reply.score[0],
        ...(reply.previous === undefined ? {} : { previous: reply.previous.rank }),
      };
    }
    case "top": {
      const reply = await stage.request<RangeReply>(`rank:r?${BOARD}`, 1, data.count ?? 10);
      return { message: "top", total: reply.total, players: reply.entries.map(player) };
    }
    case "me": {
      const reply = await stage.request<GetReply>(`rank:g?${BOARD}`, data.user);
      return {
        message: "me",
        user: reply.id,
        rank: reply.rank,
        points: reply.score?.[0] ?? null,
        total: reply.total,
        ...(reply.above === undefined
          ? {}
          : { ahead: { user: reply.above.id, gap: reply.above.distance } }),
        ...(reply.below === undefined
          ? {}
          : { behind: { user: reply.below.id, gap: reply.below.distance } }),
      };
    }
    case "near": {
      const reply = await stage.request<RangeReply>(`rank:range?${BOARD}`, {
        around: data.user,
        before: 2,
        after: 2,
      });
      return { message: "near", players: reply.entries.map(player) };
    }
    case "quit": {
      const reply = await stage.request<{ deleted: boolean }>(`rank:d?${BOARD}`, data.user);
      return { message: "quit", user: data.user, removed: reply.deleted };
    }
    default:
      throw new TypeError(`unknown message ${JSON.stringify(data?.message)}`);
  }
}

broker.ready(`tcp://${LISTEN}?json`, () => async (socket, data) => {
  try {
    socket.commit(await handle(data));
  } catch (error) {
    // A bad user id or points come back from the index stage as a TypeError/RangeError.
    socket.commit({ message: "error", reason: (error as Error).message });
  }
});
