/**
 * The supervisor's lifecycle with a fake launcher and a manual clock, and the
 * launcher's command-line logic (pure functions of child_launcher.ts).
 */
import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import {
  type ChildExit,
  type ChildHandle,
  type ChildLauncher,
  type ChildSignal,
  Supervisor,
} from "../../core/cluster/supervisor.ts";
import { childArgs, DEFAULT_DENO_FLAGS, selfCommand } from "../../core/cluster/child_launcher.ts";
import { ManualClock } from "../_helpers/manual_clock.ts";

interface Record {
  level: string;
  text: string;
  properties: { [key: string]: unknown };
}

/** A Logger that keeps what it is told, with `{name}` placeholders filled in. */
function recordingLogger(): { log: Logger; records: Record[] } {
  const records: Record[] = [];
  const at = (level: string) => (message: string, properties: Record["properties"] = {}) => {
    const text = message.replace(/\{(\w+)\}/g, (_, key: string) => String(properties[key]));
    records.push({ level, text, properties });
  };
  const log = { info: at("info"), warn: at("warn"), error: at("error") };
  return { log: log as unknown as Logger, records };
}

class FakeChild implements ChildHandle {
  readonly kills: ChildSignal[] = [];
  readonly exited: Promise<ChildExit>;
  #resolve!: (exit: ChildExit) => void;
  #done = false;

  /** The signals this child exits on. */
  onKill: ChildSignal[];

  constructor(readonly pid: number, readonly group: number, onKill: ChildSignal[]) {
    this.onKill = [...onKill];
    this.exited = new Promise((resolve) => this.#resolve = resolve);
  }

  kill(signal: ChildSignal): void {
    this.kills.push(signal);
    if (this.onKill.includes(signal)) this.exit({ code: null, signal });
  }

  exit(exit: ChildExit): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve(exit);
  }
}

class FakeLauncher implements ChildLauncher {
  readonly spawned: FakeChild[] = [];
  /** Which signals make a new child exit (default: both, like a well-behaved child). */
  onKill: ChildSignal[] = ["SIGTERM", "SIGKILL"];
  failNext = 0;
  #nextPid = 1000;

  spawn(group: number): ChildHandle {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("spawn failed: no such file");
    }
    const child = new FakeChild(this.#nextPid++, group, this.onKill);
    this.spawned.push(child);
    return child;
  }

  of(group: number): FakeChild[] {
    return this.spawned.filter((child) => child.group === group);
  }

  last(group: number): FakeChild {
    const children = this.of(group);
    const child = children[children.length - 1];
    assert.ok(child !== undefined, `no child spawned for group ${group}`);
    return child;
  }
}

/** Lets the exit handlers (promise callbacks) run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function setup(groups: number[] = [0, 1]) {
  const clock = new ManualClock();
  const launcher = new FakeLauncher();
  const { log, records } = recordingLogger();
  const supervisor = new Supervisor({
    groups,
    launcher,
    clock,
    log,
    describe: (group) => `script+s${group}`,
  });
  return { clock, launcher, records, supervisor };
}

/** Crashes group `group`'s live child and returns the announced restart delay. */
async function crash(
  { launcher, supervisor }: ReturnType<typeof setup>,
  group: number,
  exit: ChildExit = { code: 1, signal: null },
): Promise<number> {
  launcher.last(group).exit(exit);
  await settle();
  const status = supervisor.children.find((child) => child.group === group)!;
  assert.equal(status.state, "backoff");
  assert.ok(status.restartInMs !== undefined);
  return status.restartInMs;
}

Deno.test("Supervisor starts one child per group and logs each start with group and pid", async () => {
  const { launcher, records, supervisor } = setup([0, 1, 2]);
  supervisor.start();
  supervisor.start(); // idempotent
  assert.deepEqual(launcher.spawned.map((child) => child.group), [0, 1, 2]);
  assert.deepEqual(
    supervisor.children.map(({ group, state, pid, starts }) => ({ group, state, pid, starts })),
    [
      { group: 0, state: "running", pid: 1000, starts: 1 },
      { group: 1, state: "running", pid: 1001, starts: 1 },
      { group: 2, state: "running", pid: 1002, starts: 1 },
    ],
  );
  const starts = records.filter((record) => record.text.startsWith("Started"));
  assert.equal(starts.length, 3);
  assert.equal(starts[1]!.text, "Started the child of group 1 (script+s1): pid 1001");
  assert.equal(starts[1]!.properties.group, 1);
  assert.equal(starts[1]!.properties.pid, 1001);
  await supervisor.stop(1000);
});

Deno.test("Supervisor restarts a crashed child after a backoff that doubles up to a 30 s cap", async () => {
  const s = setup();
  const { clock, launcher, supervisor } = s;
  supervisor.start();
  const delays: number[] = [];
  for (let i = 0; i < 10; i++) {
    const delay = await crash(s, 0);
    delays.push(delay);
    const before = launcher.of(0).length;
    clock.advance(delay - 1);
    assert.equal(launcher.of(0).length, before, `not restarted before ${delay} ms`);
    clock.advance(1);
    assert.equal(launcher.of(0).length, before + 1, `restarted after ${delay} ms`);
  }
  assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  // The other group's child was never touched.
  assert.equal(launcher.of(1).length, 1);
  assert.deepEqual(launcher.last(1).kills, []);
  assert.equal(supervisor.children[0]!.starts, 11);
  await supervisor.stop(1000);
});

Deno.test("Supervisor forgives earlier crashes once a child stayed up for 60 s", async () => {
  const s = setup([0]);
  const { clock, supervisor } = s;
  supervisor.start();
  for (const expected of [250, 500, 1000]) {
    assert.equal(await crash(s, 0), expected);
    clock.advance(expected);
  }
  clock.advance(59_999); // up 59.999 s: not long enough
  assert.equal(await crash(s, 0), 2000);
  clock.advance(2000);
  clock.advance(60_000); // up 60 s: back to the first delay
  assert.equal(await crash(s, 0), 250);
  await supervisor.stop(1000);
});

Deno.test("Supervisor logs every exit once with group, pid, code or signal and the delay", async () => {
  const s = setup([0]);
  const { clock, records, supervisor } = s;
  supervisor.start();
  clock.advance(1234);
  await crash(s, 0, { code: null, signal: "SIGKILL" });
  clock.advance(250);
  await crash(s, 0, { code: 3, signal: null });
  const deaths = records.filter((record) => record.text.includes("died"));
  assert.deepEqual(deaths.map((record) => [record.level, record.text]), [
    [
      "warn",
      "The child of group 0 (script+s0) (pid 1000) died: signal SIGKILL after 1234 ms; restarting in 250 ms",
    ],
    [
      "warn",
      "The child of group 0 (script+s0) (pid 1001) died: exit code 3 after 0 ms; restarting in 500 ms",
    ],
  ]);
  assert.deepEqual(
    [deaths[0]!.properties.group, deaths[0]!.properties.pid, deaths[0]!.properties.signal],
    [0, 1000, "SIGKILL"],
  );
  assert.equal(deaths[1]!.properties.code, 3);
  assert.deepEqual(supervisor.children[0]!.lastExit, { code: 3, signal: null });
  await supervisor.stop(1000);
});

Deno.test("Supervisor retries a child that cannot be spawned, with the same backoff", async () => {
  const { clock, launcher, records, supervisor } = setup([0]);
  launcher.failNext = 2;
  supervisor.start();
  assert.equal(launcher.spawned.length, 0);
  assert.equal(supervisor.children[0]!.state, "backoff");
  assert.equal(supervisor.children[0]!.restartInMs, 250);
  clock.advance(250);
  assert.equal(supervisor.children[0]!.restartInMs, 500);
  clock.advance(500);
  assert.equal(launcher.spawned.length, 1);
  assert.equal(supervisor.children[0]!.state, "running");
  const errors = records.filter((record) => record.level === "error");
  assert.equal(errors.length, 2);
  assert.match(errors[0]!.text, /group 0 .*spawn failed: no such file; retrying in 250 ms/);
  await supervisor.stop(1000);
});

Deno.test("Supervisor.stop sends SIGTERM, then SIGKILL to the children still alive after the grace", async () => {
  const { clock, launcher, records, supervisor } = setup([0, 1]);
  launcher.onKill = ["SIGTERM", "SIGKILL"];
  supervisor.start();
  launcher.last(1).onKill = ["SIGKILL"]; // group 1 ignores SIGTERM
  let resolved = false;
  const stopped = supervisor.stop(5000).then(() => resolved = true);
  assert.equal(supervisor.stop(5000), supervisor.stop(1), "one stop, one promise");
  await settle();
  assert.deepEqual(launcher.last(0).kills, ["SIGTERM"]);
  assert.deepEqual(launcher.last(1).kills, ["SIGTERM"]);
  assert.equal(supervisor.children[0]!.state, "stopped");
  assert.equal(supervisor.children[1]!.state, "stopping");
  assert.equal(resolved, false);
  clock.advance(4999);
  await settle();
  assert.deepEqual(launcher.last(1).kills, ["SIGTERM"], "no SIGKILL before the grace is over");
  clock.advance(1);
  await stopped;
  assert.deepEqual(launcher.last(0).kills, ["SIGTERM"], "the child that stopped is left alone");
  assert.deepEqual(launcher.last(1).kills, ["SIGTERM", "SIGKILL"]);
  assert.deepEqual(supervisor.children.map((child) => child.state), ["stopped", "stopped"]);
  assert.deepEqual(supervisor.children[1]!.lastExit, { code: null, signal: "SIGKILL" });
  assert.ok(records.some((record) => record.text.includes("did not stop within 5000 ms")));
  assert.equal(clock.pending, 0, "no timer left behind");
});

Deno.test("Supervisor restarts nothing during or after stop and cancels a pending restart", async () => {
  const s = setup([0, 1]);
  const { clock, launcher, supervisor } = s;
  launcher.onKill = ["SIGKILL"]; // SIGTERM starts a drain; the child exits when it is done
  supervisor.start();
  await crash(s, 0); // group 0 waits 250 ms for its restart
  const stopped = supervisor.stop(5000);
  assert.equal(supervisor.children[0]!.state, "stopped");
  assert.equal(supervisor.children[0]!.restartInMs, undefined);
  launcher.last(1).exit({ code: 0, signal: null }); // drained
  await stopped;
  clock.advance(120_000);
  await settle();
  assert.equal(launcher.of(0).length, 1, "the pending restart was cancelled");
  assert.equal(launcher.of(1).length, 1, "an exit during stop is not a crash");
  assert.deepEqual(launcher.last(1).kills, ["SIGTERM"]);
  assert.equal(clock.pending, 0);
  supervisor.start();
  assert.equal(launcher.spawned.length, 2, "start after stop does nothing");
});

Deno.test("Supervisor rejects bad groups and backoff settings with what it found", () => {
  const base = {
    launcher: new FakeLauncher(),
    clock: new ManualClock(),
    log: recordingLogger().log,
  };
  assert.throws(() => new Supervisor({ ...base, groups: [0, -1] }), /integer >= 0; got -1/);
  assert.throws(() => new Supervisor({ ...base, groups: [1, 1] }), /distinct; got \[1,1\]/);
  assert.throws(
    () => new Supervisor({ ...base, groups: [0], backoff: { initialMs: 0 } }),
    /0 < initialMs <= maxMs/,
  );
});

Deno.test("selfCommand re-runs a compiled binary as itself and keeps deno's own flags", () => {
  const facts = {
    execPath: "/usr/bin/deno",
    mainModule: "file:///app/main.ts",
    compiled: false,
    args: ["run", "--supervise", "--", "x"],
  };
  assert.deepEqual(selfCommand({ ...facts, execPath: "/app/stage", compiled: true }), {
    execPath: "/app/stage",
    prefix: [],
  });
  assert.deepEqual(
    selfCommand({
      ...facts,
      cmdline: [
        "deno",
        "run",
        "--allow-read=/app",
        "--inspect=127.0.0.1:9229",
        "--unstable-net",
        "--watch",
        "./main.ts",
        ...facts.args,
      ],
    }),
    {
      execPath: "/usr/bin/deno",
      prefix: ["run", "--allow-read=/app", "--unstable-net", "file:///app/main.ts"],
    },
    "deno's flags kept except the inspector and the watcher; the main module by absolute URL",
  );
  const fallback = {
    execPath: "/usr/bin/deno",
    prefix: ["run", ...DEFAULT_DENO_FLAGS, "file:///app/main.ts"],
  };
  assert.deepEqual(selfCommand(facts), fallback, "no command line: the default flags");
  assert.deepEqual(
    selfCommand({ ...facts, cmdline: ["stage[0]", "", "", "", "", "", "", ""] }),
    fallback,
    "a command line that does not end with the program's arguments is not trusted",
  );
});

Deno.test("childArgs names the config, the group and the options to pass on", () => {
  assert.deepEqual(
    childArgs(2, { config: "/d/stage.json", transpile: true, workers: 3, args: ["a", "--b"] }),
    [
      "run",
      "--config",
      "/d/stage.json",
      "--group",
      "2",
      "--transpile",
      "--workers",
      "3",
      "--",
      "a",
      "--b",
    ],
  );
  assert.deepEqual(childArgs(0, { config: "/d/stage.json", transpile: false, args: [] }), [
    "run",
    "--config",
    "/d/stage.json",
    "--group",
    "0",
  ]);
});

Deno.test("Supervisor: a group that never got ready, or exits with code 2, is fatal (not restarted)", async () => {
  const clock = new ManualClock();
  const launcher = new FakeLauncher();
  const { log } = recordingLogger();
  const fatal: [number, ChildExit][] = [];
  const supervisor = new Supervisor({
    groups: [0, 1, 2],
    launcher,
    clock,
    log,
    onFatal: (group, exit) => fatal.push([group, exit]),
  });
  supervisor.start();
  supervisor.ready(1);
  supervisor.ready(2);
  // Group 0 dies before it was ever ready: a failed start.
  launcher.last(0).exit({ code: 1, signal: null });
  // Group 1 was ready: a crash, restarted with backoff.
  launcher.last(1).exit({ code: null, signal: "SIGKILL" });
  // Group 2 exits with a usage/config error: restarting cannot help.
  launcher.last(2).exit({ code: 2, signal: null });
  await settle();
  assert.deepEqual(fatal, [[0, { code: 1, signal: null }], [2, { code: 2, signal: null }]]);
  assert.deepEqual(supervisor.children.map((child) => child.state), [
    "stopped",
    "backoff",
    "stopped",
  ]);
  clock.advance(250);
  assert.equal(launcher.of(1).length, 2, "the crashed group came back");
  assert.equal(launcher.of(0).length, 1);
  // Once ready, a group stays restartable: its new child dying early is a crash too.
  launcher.last(1).exit({ code: 1, signal: null });
  await settle();
  assert.equal(fatal.length, 2);
  await supervisor.stop(1000);
});
