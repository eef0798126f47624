/**
 * `stage run --supervise` as users run it: real child processes, real sockets.
 */
import assert from "node:assert/strict";
import { FrameClient } from "../_helpers/frame_client.ts";
import { REFERENCE } from "../_helpers/stage_fixture.ts";
import {
  freePort,
  type LogLine,
  StageProcess,
  writeDeployment,
} from "../_helpers/stage_process.ts";

const CONFIG = {
  "#threads": [1, 100],
  "#startup": [["script+a"], ["script+b"]],
  script: { "%package": ["scripts"], "script+a": "a", "script+b": "b" },
};

/** A script stage that echoes on its own port, tagging replies with its id and pid. */
const server = (id: string, port: number) =>
  REFERENCE + `
broker.ready("tcp://127.0.0.1:${port}?json", () => async (socket, data) => {
  if (data.slow) await new Promise((resolve) => setTimeout(resolve, data.slow));
  socket.commit({ ...data, from: "${id}", pid: process.pid });
});
`;

async function deployment() {
  const portA = freePort();
  let portB = freePort();
  while (portB === portA) portB = freePort();
  const { dir, config } = await writeDeployment(CONFIG, {
    "a.ts": server("a", portA),
    "b.ts": server("b", portB),
  });
  return { dir, config, portA, portB };
}

const isStart = (group: number) => (line: LogLine) =>
  line.message.startsWith("Started the child of") && line.properties.group === group;
const isListening = (group: number, pid: number) => (line: LogLine) =>
  line.message.includes("listening on") && line.properties.group === group &&
  line.properties.pid === pid;

/** Waits for both children to listen; returns their pids by group. */
async function childrenUp(stage: StageProcess): Promise<[number, number]> {
  const pids: number[] = [];
  for (const group of [0, 1]) {
    const pid = (await stage.waitFor(isStart(group))).properties.pid as number;
    await stage.waitFor(isListening(group, pid));
    // Ready (its stages started): from now on a death is a crash to restart, not a failed start.
    await stage.waitFor((line) =>
      line.message.startsWith("Process group") && line.message.endsWith("is ready") &&
      line.properties.group === group
    );
    pids.push(pid);
  }
  return [pids[0]!, pids[1]!];
}

/** One request, one reply. */
async function echo(client: FrameClient, value: Record<string, unknown>) {
  await client.send(value);
  return await client.next<Record<string, unknown>>();
}

/** Whether `pid` is still a running process (a zombie waiting for its reaper is not). */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Kills any child still running, so a failing test cannot leave orphans (or hang on them). */
function killLeftovers(stage: StageProcess): void {
  for (const line of stage.lines) {
    const pid = line.properties.pid;
    if (!line.message.startsWith("Started the child of") || typeof pid !== "number") continue;
    if (alive(pid)) Deno.kill(pid, "SIGKILL");
  }
}

/** Resolves with `promise`, or rejects naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("stage run --supervise restarts a killed child while the other serves on, and stops both gracefully on SIGTERM", async () => {
  const { dir, config, portA, portB } = await deployment();
  try {
    await using stage = new StageProcess(["run", "--supervise", "--config", config]);
    try {
      const [pidA, pidB] = await childrenUp(stage);
      assert.notEqual(pidA, pidB);
      assert.ok(pidA !== stage.child.pid && pidB !== stage.child.pid, "the groups run in children");
      await using clientA = await FrameClient.connect(portA, "json");
      {
        await using clientB = await FrameClient.connect(portB, "json");
        assert.deepEqual(await echo(clientA, { n: 1 }), { n: 1, from: "a", pid: pidA });
        assert.deepEqual(await echo(clientB, { n: 1 }), { n: 1, from: "b", pid: pidB });

        Deno.kill(pidB, "SIGKILL");
        const death = await stage.waitFor((line) => line.message.includes("died"));
        assert.equal(death.level, "WARN");
        assert.equal(death.properties.group, 1);
        assert.equal(death.properties.pid, pidB);
        assert.equal(death.properties.signal, "SIGKILL");
        assert.equal(death.properties.delayMs, 250);
        await clientB.closedByServer(); // the dead child's own sockets are gone
      }
      const restarted = await stage.waitFor((line) =>
        isStart(1)(line) && line.properties.pid !== pidB
      );
      const newPidB = restarted.properties.pid as number;
      assert.equal(restarted.properties.starts, 2);
      // Group 0 keeps answering on its open connection while group 1 comes back.
      let n = 2;
      const deadline = Date.now() + 10_000;
      let reply: Record<string, unknown> | undefined;
      while (reply === undefined) {
        assert.deepEqual(await echo(clientA, { n }), { n, from: "a", pid: pidA });
        n++;
        try {
          await using clientB = await FrameClient.connect(portB, "json");
          reply = await echo(clientB, { n: 0 });
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assert.deepEqual(reply, { n: 0, from: "b", pid: newPidB });
      assert.equal(stage.lines.filter(isStart(0)).length, 1, "group 0 was never restarted");

      // SIGTERM: the children drain (a reply being computed is still delivered), exit 0.
      await clientA.send({ slow: 300 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      stage.signal("SIGTERM");
      assert.deepEqual(await clientA.next(), { slow: 300, from: "a", pid: pidA });
      await clientA.closedByServer();
      assert.equal(await within(stage.exitCode(), 15_000, "supervisor exit"), 0);
      const stopped = stage.lines.filter((line) => line.message.includes(") stopped:"));
      assert.deepEqual(
        stopped.map((line) => [line.properties.group, line.properties.code]).sort(),
        [[0, 0], [1, 0]],
        "both children exited by themselves with code 0",
      );
      assert.ok(!stage.lines.some((line) => line.message.includes("sending SIGKILL")));
      assert.equal(stage.lines.filter((line) => line.message.includes("died")).length, 1);
      assert.ok(!alive(pidA) && !alive(newPidB));
    } finally {
      killLeftovers(stage);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage run --supervise: children stop by themselves when the supervisor is SIGKILLed", async () => {
  const { dir, config } = await deployment();
  try {
    await using stage = new StageProcess(["run", "--supervise", "--config", config]);
    try {
      const pids = await childrenUp(stage);
      stage.signal("SIGKILL");
      // The children share the supervisor's stdout: the output ends when the last one exits.
      await within(stage.exitCode(), 10_000, "children exit after the supervisor's death");
      // A supervisor killed by SIGKILL cannot remove its bus hub's folder: the test does.
      const bus = stage.lines.find((line) => line.properties.bus !== undefined)?.properties.bus;
      assert.equal(typeof bus, "string");
      await Deno.remove(String(bus).slice(0, String(bus).lastIndexOf("/")), { recursive: true });
      for (const [group, pid] of pids.entries()) {
        assert.ok(!alive(pid), `child ${pid} of group ${group} is gone`);
        const stoppedGracefully = stage.lines.some((line) =>
          line.message === "Stage stopped" && line.properties.pid === pid
        );
        assert.ok(stoppedGracefully, `child ${pid} stopped gracefully`);
        assert.ok(
          stage.lines.some((line) =>
            line.properties.pid === pid && String(line.properties.signal).includes("stdin closed")
          ),
        );
      }
    } finally {
      killLeftovers(stage);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
