/**
 * Overload detach on the local bus: a process whose `#router` detector finds
 * it overloaded leaves routing at once (the others send its stages no routed
 * work) and rejoins after it recovers. Two real process runtimes with real
 * workers share one BusHub in this test process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BusHub } from "../../core/cluster/bus_hub.ts";
import { type RunningProcess, startProcess } from "../../core/cluster/mod.ts";
import { loadConfig } from "../../core/config/mod.ts";
import { coreLogger } from "../../core/log/mod.ts";
import { packValues } from "../../core/message/mod.ts";
import { encodeSignal } from "../../core/pool/wire.ts";
import { systemClock } from "../../core/time/mod.ts";
import { FrameClient } from "../_helpers/frame_client.ts";
import { quietLog, REFERENCE } from "../_helpers/stage_fixture.ts";

const FRONT = REFERENCE + `
broker.ready("tcp://127.0.0.1:0?json", () => async (socket, data) => {
  const who = await Promise.all(
    Array.from({ length: data.n }, () => stage.request("calc:who", { timeout: 5000 })),
  );
  socket.commit({ who });
});
`;

// Each instance answers with its name; "spin" holds its worker, so its queue backs up.
const calc = (name: string) =>
  REFERENCE + `
stage.waitfor("who", () => "${name}");
stage.waitfor("spin", (ms: number) => { const end = Date.now() + ms; while (Date.now() < end) {} });
`;

async function deployment(name: string, startup: string[][], scripts: Record<string, string>) {
  const dir = await Deno.makeTempDir({ prefix: `stage-${name}-` });
  await Deno.mkdir(join(dir, "scripts"));
  for (const [file, source] of Object.entries(scripts)) {
    await Deno.writeTextFile(join(dir, "scripts", file), source);
  }
  const mains = Object.fromEntries(
    Object.keys(scripts).map((file) => [`script+${file.slice(0, -3)}`, file.slice(0, -3)]),
  );
  await Deno.writeTextFile(
    join(dir, "stage.json"),
    JSON.stringify({
      "#startup": startup,
      "#router": [30, 15],
      script: { "%package": ["scripts"], ...mains },
    }),
  );
  return { dir, config: await loadConfig(join(dir, "stage.json"), () => undefined) };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("local bus: an overloaded process leaves routing at once and rejoins after recovery", async () => {
  const log = coreLogger("test");
  await using hub = await BusHub.start({ clock: systemClock, log });
  const a = await deployment("a", [["script+front", "script+calc"]], {
    "front.ts": FRONT,
    "calc.ts": calc("a"),
  });
  const b = await deployment("b", [["script+calc"]], { "calc.ts": calc("b") });
  const running: RunningProcess[] = [];
  try {
    for (const [index, { config }] of [a, b].entries()) {
      running.push(
        await startProcess(config, {
          transpile: false,
          args: [],
          logOptions: quietLog,
          log,
          workers: 1,
          hub: { path: hub.path, node: "n", endpoint: `n/${index}` },
        }),
      );
    }
    const front = running[0]!.stages.get("front")!;
    const port = Number([...front.broker.listeners().values()][0]!.split(":").pop());
    await using client = await FrameClient.connect(port, "json");
    const ask = async (n: number) => {
      await client.send({ n });
      return (await client.next<{ who: string[] }>(20_000)).who;
    };
    await until("both ready", () => hub.members.filter((m) => m.state === "ready").length === 2);
    const spread = await ask(40);
    assert.ok(spread.includes("a") && spread.includes("b"), `both take turns: ${spread}`);

    // Back b's only worker up: its dispatch delay shoots past the 30 ms threshold.
    const calcB = running[1]!.stages.get("calc")!;
    for (let i = 0; i < 12; i++) {
      calcB.deliver(
        { stage: "calc", scope: "one", message: "spin", from: { stage: "test", worker: 0 } },
        spinBody(),
      );
    }
    await until(
      "b overloaded",
      () => hub.members.some((m) => m.endpoint === "n/1" && m.state === "overloaded"),
    );
    // The sender decides the routing: wait until a's own view has the news.
    await until(
      "a sees b overloaded",
      () =>
        running[0]!.routes().peers.some((p) => p.endpoint === "n/1" && p.state === "overloaded"),
    );
    const during = await ask(20);
    assert.deepEqual(new Set(during), new Set(["a"]), "no routed work for the overloaded process");

    await until("b recovered", () => hub.members.every((m) => m.state === "ready"), 20_000);
    await until("b takes turns again", async () => (await ask(20)).includes("b"));
  } finally {
    for (const process of running.reverse()) await process.stop(2000);
    await Deno.remove(a.dir, { recursive: true });
    await Deno.remove(b.dir, { recursive: true });
  }
});

/** A `spin` message's body: 150 ms of busy work. */
function spinBody(): Uint8Array {
  const header = {
    stage: "calc",
    scope: "one" as const,
    message: "spin",
    from: { stage: "test", worker: 0 },
  };
  return encodeSignal(header, packValues([150]).bytes);
}
