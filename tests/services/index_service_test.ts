/**
 * The index service stage in a real process runtime: scripts reach it through
 * stage.request / stage.signal; and a kill -9 of a real `main.ts` subprocess
 * loses no acknowledged update.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE, startFixture } from "../_helpers/stage_fixture.ts";
import { freePort, StageProcess, writeDeployment } from "../_helpers/stage_process.ts";

/** Forwards `{ target, args }` to the index stage and commits the reply (or the error). */
const PROXY = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  try {
    if (data.each !== undefined) {
      // forEach: collect the messages sent to a waitfor until "left" reaches 0.
      const got: unknown[] = [];
      const id = stage.waitfor((entry: unknown, left: number) => {
        got.push(entry);
        if (left === 0) {
          stage.waitfor(id, null);
          socket.commit({ each: got });
        }
      }) as string;
      stage.signal(data.each + "=" + id, ...data.args);
      return;
    }
    if (data.callback !== undefined) {
      // signal with a reply waitfor: "rank:s?board=cb".
      const id = stage.waitfor((reply: unknown) => {
        stage.waitfor(id, null);
        socket.commit({ callback: reply });
      }) as string;
      stage.signal(data.callback + "=" + id, ...data.args);
      return;
    }
    socket.commit({ ok: await stage.request(data.target, ...data.args) });
  } catch (error) {
    socket.commit({ error: error.name, message: error.message });
  }
});
`;

async function withIndex(run: (ask: Ask) => Promise<void>): Promise<void> {
  await using fixture = await startFixture({
    config: {
      "#startup": [["index+rank", "script+start"]],
      "index+rank": { path: "data/rank.db" },
    },
    scripts: { "start.ts": PROXY },
  });
  await using client = await FrameClient.connect(fixture.port(), "json");
  await run(async (message) => {
    await client.send(message);
    return await client.next();
  });
}

type Ask = (message: Record<string, unknown>) => Promise<Record<string, unknown>>;

const request = (ask: Ask, target: string, ...args: unknown[]) => ask({ target, args });

Deno.test("index stage: set, get, del and range by their short and long names", async () => {
  await withIndex(async (ask) => {
    assert.deepEqual(await request(ask, "rank:s?cb", "ann", 50), {
      ok: { id: "ann", rank: 1, score: [50, 0, 0, 0], total: 1 },
    });
    await request(ask, "rank:set?cb", "bob", [80, 1]);
    await request(ask, "rank:s?cb", 7, [30]); // a safe integer id is its decimal string
    assert.deepEqual(await request(ask, "rank:s?cb", "ann", 90), {
      ok: {
        id: "ann",
        rank: 1,
        score: [90, 0, 0, 0],
        total: 3,
        previous: { rank: 2, score: [50, 0, 0, 0] },
      },
    });
    assert.deepEqual((await request(ask, "rank:s?cb/1", "7", 4)).ok, {
      id: "7",
      rank: 3,
      score: [30, 4, 0, 0],
      total: 3,
      previous: { rank: 3, score: [30, 0, 0, 0] },
    });
    assert.deepEqual(await request(ask, "rank:g?cb", "bob"), {
      ok: {
        id: "bob",
        rank: 2,
        score: [80, 1, 0, 0],
        total: 3,
        above: { id: "ann", rank: 1, score: [90, 0, 0, 0], distance: 10 },
        below: { id: "7", rank: 3, score: [30, 4, 0, 0], distance: 50 },
      },
    });
    assert.deepEqual((await request(ask, "rank:get?other", "bob")).ok, {
      id: "bob",
      rank: null,
      score: null,
      total: 0,
    });
    const ids = (reply: Record<string, unknown>) =>
      (reply.ok as { entries: { id: string }[] }).entries.map((e) => e.id);
    assert.deepEqual(ids(await request(ask, "rank:r?cb", 1, 2)), ["ann", "bob"]);
    assert.deepEqual(ids(await request(ask, "rank:range?cb", { rank: 2 })), ["bob", "7"]);
    assert.deepEqual(ids(await request(ask, "rank:r?cb", { min: 40, max: 85 })), ["bob"]);
    assert.deepEqual(ids(await request(ask, "rank:r?cb", "bob", 0, 1)), ["bob", "7"]);
    assert.deepEqual((await request(ask, "rank:r?cb", { around: "bob", before: 1 })).ok, {
      board: "cb",
      total: 3,
      entries: [
        { id: "ann", rank: 1, score: [90, 0, 0, 0] },
        { id: "bob", rank: 2, score: [80, 1, 0, 0] },
        { id: "7", rank: 3, score: [30, 4, 0, 0] },
      ],
    });
    assert.deepEqual((await request(ask, "rank:d?cb", "ann")).ok, {
      id: "ann",
      deleted: true,
      rank: 1,
      total: 2,
    });
    assert.deepEqual((await request(ask, "rank:del?cb", "ann")).ok, {
      id: "ann",
      deleted: false,
      total: 2,
    });
  });
});

Deno.test("index stage: forEach delivers one message per entry to the reply waitfor; signal =cb replies", async () => {
  await withIndex(async (ask) => {
    for (let i = 1; i <= 600; i++) await request(ask, "rank:s?big", `p${i}`, i);
    // 600 entries from rank 3: more than one slice of messages.
    const each = (await ask({ each: "rank:f?big", args: [3, 597] })).each as {
      id: string;
      rank: number;
    }[];
    assert.equal(each.length, 597);
    assert.deepEqual(each.slice(0, 2), [
      { id: "p598", rank: 3, score: [598, 0, 0, 0] },
      { id: "p597", rank: 4, score: [597, 0, 0, 0] },
    ]);
    assert.deepEqual(each.map((e) => e.rank), Array.from({ length: 597 }, (_, i) => i + 3));
    assert.deepEqual(await ask({ each: "rank:forEach?empty", args: [] }), { each: [null] });
    assert.deepEqual(await ask({ callback: "rank:s?big", args: ["p1", 1000] }), {
      callback: {
        id: "p1",
        rank: 1,
        score: [1000, 0, 0, 0],
        total: 600,
        previous: { rank: 600, score: [1, 0, 0, 0] },
      },
    });
  });
});

Deno.test("index stage: bad boards and arguments come back to the sender as named errors", async () => {
  await withIndex(async (ask) => {
    const cases: [string, unknown[], string, RegExp][] = [
      ["rank:s", ["ann", 1], "TypeError", /rank:set: no board/],
      ["rank:s?bad board", ["ann", 1], "TypeError", /invalid board name/],
      ["rank:s?cb/7", ["ann", 1], "RangeError", /tier must be 0, 1, 2 or 3/],
      ["rank:g?cb/1", ["ann"], "TypeError", /only set takes a tier/],
      ["rank:s?cb", ["", 1], "TypeError", /id must be a non-empty string/],
      ["rank:s?cb", ["ann", "ten"], "TypeError", /score must be a number or an array/],
      ["rank:s?cb", ["ann", [1, 2, 3, 4, 5]], "TypeError", /array of 1 to 4 numbers/],
      ["rank:s?cb", ["ann", [1, NaN]], "TypeError", /score\[1\] must be a finite number/],
      ["rank:r?cb", [1, 5000], "RangeError", /count must be an integer from 0 to 1000/],
      ["rank:r?cb", [0], "RangeError", /rank must be an integer ≥ 1/],
      ["rank:r?cb", [{ top: 3 }], "TypeError", /unknown range option "top"/],
      ["rank:x?cb", [], "WaitforNotFoundError", /No waitfor matches message "x"/],
    ];
    for (const [target, args, name, message] of cases) {
      const reply = await request(ask, target, ...args);
      assert.equal(reply.error, name, `${target} ${JSON.stringify(args)}: ${reply.message}`);
      assert.match(String(reply.message), message);
    }
    // Nothing else was affected.
    assert.deepEqual((await request(ask, "rank:s?cb", "ann", 1)).ok, {
      id: "ann",
      rank: 1,
      score: [1, 0, 0, 0],
      total: 1,
    });
  });
});

/**
 * Acknowledges each `{ id, score }` set once the index stage replied. The
 * handler does not wait for the reply, so many sets are in flight at once.
 */
const ACKER = REFERENCE + `
broker.ready("tcp://127.0.0.1:" + process.args[0] + "?json", () => (socket, data) => {
  if (data.get !== undefined) {
    return stage.request("rank:g?b", data.get).then((reply) => socket.commit(reply));
  }
  stage.request("rank:s?b", data.id, data.score).then(
    (reply) => socket.commit({ ack: data.id, score: reply.score[0] }),
    (error) => socket.commit({ error: error.message }),
  );
});
`;

Deno.test("index stage: after kill -9, every acknowledged update is there on restart", async () => {
  const { dir, config } = await writeDeployment({
    "#threads": [2, 10_000],
    "#startup": [["index+rank", "script+start"]],
    "index+rank": { path: "data/rank.db" },
    script: { "%package": ["scripts"], "script+start": "start" },
  }, { "start.ts": ACKER });
  try {
    const ids = 40;
    const rounds = 25; // each id is set 25 times, with a growing score
    const acked = new Map<string, number>();
    {
      const port = freePort();
      await using stage = new StageProcess([
        "run",
        "--single",
        "--config",
        config,
        "--",
        `${port}`,
      ]);
      await stage.waitFor((line) => line.message.includes("listening on"));
      await using client = await FrameClient.connect(port, "json");
      const sets = [];
      for (let round = 1; round <= rounds; round++) {
        for (let i = 0; i < ids; i++) sets.push({ id: `u${i}`, score: round * 100 + i });
      }
      await client.send(...sets); // pipelined: many are in flight at the kill
      for (let n = 0; n < sets.length / 2; n++) {
        const ack = await client.next<{ ack: string; score: number }>(10_000);
        acked.set(ack.ack, Math.max(acked.get(ack.ack) ?? 0, ack.score));
      }
      stage.signal("SIGKILL");
      assert.notEqual(await stage.exitCode(), 0);
    }
    assert.ok(acked.size > 0);
    const port = freePort();
    await using stage = new StageProcess(["run", "--single", "--config", config, "--", `${port}`]);
    const loaded = await stage.waitFor((line) => line.message.includes("loaded from"));
    assert.ok(Number(loaded.properties.entries) >= acked.size, loaded.message);
    await stage.waitFor((line) => line.message.includes("listening on"));
    await using client = await FrameClient.connect(port, "json");
    for (const [id, score] of acked) {
      await client.send({ get: id });
      const reply = await client.next<{ score: number[] | null }>();
      assert.ok(reply.score !== null, `${id} is missing after the restart`);
      // A later update may have been committed without its ack reaching us: never an older one.
      assert.ok(reply.score[0]! >= score, `${id}: acknowledged ${score}, found ${reply.score[0]}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
