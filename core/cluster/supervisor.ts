/**
 * The supervisor: one child process per `#startup` group, restarted with
 * backoff when it dies, stopped gracefully on shutdown.
 *
 * Processes are reached through an injected {@link ChildLauncher} and time
 * through an injected {@link Clock}, so the lifecycle is tested with fakes; the
 * Deno adapter is `child_launcher.ts`.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, TimerHandle } from "../time/mod.ts";

/** The signals the supervisor sends to its children. */
export type ChildSignal = "SIGTERM" | "SIGKILL";

/** How a child process ended: an exit code, or the signal that killed it. */
export interface ChildExit {
  /** The exit code, or `null` when a signal ended the process. */
  code: number | null;
  /** The signal that ended the process (`"SIGKILL"`), or `null`. */
  signal: string | null;
}

/** One running child process, as the launcher hands it over. */
export interface ChildHandle {
  readonly pid: number;
  /** Resolves (never rejects) once the process has exited. */
  readonly exited: Promise<ChildExit>;
  /** Sends `signal`; harmless once the process has exited. */
  kill(signal: ChildSignal): void;
}

/** Starts the child process of one `#startup` group. */
export interface ChildLauncher {
  /**
   * Spawns the child that runs group `group`.
   *
   * @throws when the process cannot be started (the supervisor retries with backoff)
   */
  spawn(group: number): ChildHandle;
}

/**
 * Where a group's child is in its lifecycle: `stopped` before {@link Supervisor.start}
 * and after {@link Supervisor.stop}, `backoff` while waiting to be restarted.
 */
export type ChildState = "running" | "backoff" | "stopping" | "stopped";

/** A snapshot of one group's child (plain data, for tests and the admin API). */
export interface ChildStatus {
  group: number;
  state: ChildState;
  /** The pid of the live process; absent in `backoff` and `stopped`. */
  pid?: number;
  /** How many times the group's child has been started. */
  starts: number;
  /** How the previous child ended, if one did. */
  lastExit?: ChildExit;
  /** In `backoff`: the delay before the next start, in ms. */
  restartInMs?: number;
}

/** The restart policy: exponential backoff, capped, forgiven after a long uptime. */
export interface BackoffPolicy {
  /** The delay after the first crash (default 250 ms). */
  initialMs: number;
  /** The longest delay (default 30 s): a group that keeps crashing is retried at this pace. */
  maxMs: number;
  /** A child that stayed up at least this long (default 60 s) restarts from `initialMs`. */
  resetAfterMs: number;
}

/** The default {@link BackoffPolicy}. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 250,
  maxMs: 30_000,
  resetAfterMs: 60_000,
};

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  /** The `#startup` group indices to run, one child each. */
  groups: readonly number[];
  launcher: ChildLauncher;
  clock: Clock;
  log: Logger;
  backoff?: Partial<BackoffPolicy>;
  /** The stages of a group for log lines, e.g. `"script+game, =ticket+ticket"` (default: none). */
  describe?: (group: number) => string;
  /**
   * A group cannot run, so restarting it is pointless: its child exited with
   * code 2 (a usage or config error), or exited before the group was ever
   * ready (see {@link Supervisor.ready}: a script that does not load, an
   * address in use). The supervisor restarts nothing after this; the caller
   * usually stops the others and exits with `exit.code`.
   */
  onFatal?(group: number, exit: ChildExit): void;
}

interface Slot {
  group: number;
  state: ChildState;
  child?: ChildHandle;
  startedAt: number;
  starts: number;
  /** Consecutive short-lived runs: the exponent of the next delay. */
  failures: number;
  lastExit?: ChildExit;
  restartInMs?: number;
  timer?: TimerHandle;
  /** The group's child reported ready at least once (a later crash is restarted). */
  everReady: boolean;
}

/**
 * Owns the children of the `#startup` groups: starts one per group, restarts a
 * child that exits while the supervisor is not stopping (after a backoff that
 * doubles from {@link BackoffPolicy.initialMs} up to {@link BackoffPolicy.maxMs}),
 * and logs every exit once with its group, pid, code or signal and the delay.
 *
 * @example
 * ```ts
 * import { Supervisor } from "./supervisor.ts";
 * import { systemClock } from "../time/mod.ts";
 * import { getLogger } from "@logtape/logtape";
 * const pids: number[] = [];
 * const supervisor = new Supervisor({
 *   groups: [0, 1],
 *   clock: systemClock,
 *   log: getLogger(["example"]),
 *   launcher: {
 *     spawn(group) {
 *       let exit = (_: { code: number | null; signal: string | null }) => {};
 *       const exited = new Promise<{ code: number | null; signal: string | null }>((r) => exit = r);
 *       pids.push(100 + group);
 *       return { pid: 100 + group, exited, kill: (signal) => exit({ code: null, signal }) };
 *     },
 *   },
 * });
 * supervisor.start();
 * if (pids.join() !== "100,101") throw new Error("one child per group");
 * await supervisor.stop(1000);
 * if (supervisor.children.some((c) => c.state !== "stopped")) throw new Error("all stopped");
 * ```
 */
export class Supervisor implements AsyncDisposable {
  readonly #launcher: ChildLauncher;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #policy: BackoffPolicy;
  readonly #describe: (group: number) => string;
  readonly #slots: Slot[];
  #started = false;
  /** Set before anything else in {@link stop}: from then on an exit is never a crash. */
  #stopRequested = false;
  #stopping: Promise<void> | undefined;
  #onFatal: SupervisorOptions["onFatal"];

  constructor(options: SupervisorOptions) {
    for (const group of options.groups) {
      if (!Number.isInteger(group) || group < 0) {
        throw new RangeError(`Supervisor: group index must be an integer >= 0; got ${group}`);
      }
    }
    if (new Set(options.groups).size !== options.groups.length) {
      throw new RangeError(`Supervisor: groups must be distinct; got [${options.groups}]`);
    }
    this.#policy = { ...DEFAULT_BACKOFF, ...options.backoff };
    const { initialMs, maxMs, resetAfterMs } = this.#policy;
    if (!(initialMs > 0) || !(maxMs >= initialMs) || !(resetAfterMs >= 0)) {
      throw new RangeError(
        `Supervisor: backoff needs 0 < initialMs <= maxMs and resetAfterMs >= 0; got ${
          JSON.stringify(this.#policy)
        }`,
      );
    }
    this.#launcher = options.launcher;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#describe = options.describe ?? (() => "");
    this.#slots = options.groups.map((group) => ({
      group,
      state: "stopped",
      startedAt: 0,
      starts: 0,
      failures: 0,
      everReady: false,
    }));
    this.#onFatal = options.onFatal;
  }

  /** Starts one child per group (once; later calls do nothing). */
  start(): void {
    if (this.#started || this.#stopRequested) return;
    this.#started = true;
    for (const slot of this.#slots) this.#spawn(slot);
  }

  /**
   * The child of `group` is up (its stages started). Until a group has been
   * ready once, its child exiting is fatal, not a crash to restart.
   */
  ready(group: number): void {
    const slot = this.#slots.find((candidate) => candidate.group === group);
    if (slot !== undefined && slot.child !== undefined) slot.everReady = true;
  }

  /** The current state of every group's child, in group order. */
  get children(): ChildStatus[] {
    return this.#slots.map((slot) => ({
      group: slot.group,
      state: slot.state,
      ...(slot.child === undefined ? {} : { pid: slot.child.pid }),
      starts: slot.starts,
      ...(slot.lastExit === undefined ? {} : { lastExit: { ...slot.lastExit } }),
      ...(slot.restartInMs === undefined ? {} : { restartInMs: slot.restartInMs }),
    }));
  }

  /**
   * Stops every child: SIGTERM now, SIGKILL to those still alive after
   * `graceMs`; cancels pending restarts. Resolves once every child has exited.
   * Calling it again returns the same promise.
   */
  stop(graceMs: number): Promise<void> {
    this.#stopRequested = true;
    this.#stopping ??= this.#stopAll(graceMs);
    return this.#stopping;
  }

  /** {@link stop} with a 10 s grace. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop(10_000);
  }

  /** The start of a log template naming a group, and its properties. */
  #where(slot: Slot): [string, { group: number; stages?: string }] {
    const stages = this.#describe(slot.group);
    return stages === ""
      ? ["group {group}", { group: slot.group }]
      : ["group {group} ({stages})", { group: slot.group, stages }];
  }

  #spawn(slot: Slot): void {
    delete slot.timer;
    if (this.#stopRequested) return;
    delete slot.restartInMs;
    let child: ChildHandle;
    try {
      child = this.#launcher.spawn(slot.group);
    } catch (error) {
      const delayMs = this.#nextDelay(slot, 0);
      const [where, fields] = this.#where(slot);
      this.#log.error(
        `Could not start the child of ${where}: {error}; retrying in {delayMs} ms`,
        { ...fields, error, delayMs },
      );
      this.#scheduleRestart(slot, delayMs);
      return;
    }
    slot.child = child;
    slot.state = "running";
    slot.startedAt = this.#clock.now();
    slot.starts++;
    const [where, fields] = this.#where(slot);
    this.#log.info(`Started the child of ${where}: pid {pid}`, {
      ...fields,
      pid: child.pid,
      starts: slot.starts,
    });
    child.exited.then((exit) => this.#onExit(slot, child, exit));
  }

  #onExit(slot: Slot, child: ChildHandle, exit: ChildExit): void {
    if (slot.child !== child) return;
    delete slot.child;
    slot.lastExit = { code: exit.code, signal: exit.signal };
    const [where, groupFields] = this.#where(slot);
    const how = exit.signal === null ? "exit code {code}" : "signal {signal}";
    const fields = { ...groupFields, pid: child.pid, code: exit.code, signal: exit.signal };
    if (this.#stopRequested) {
      slot.state = "stopped";
      this.#log.info(`The child of ${where} (pid {pid}) stopped: ${how}`, fields);
      return;
    }
    const uptimeMs = this.#clock.now() - slot.startedAt;
    if (this.#onFatal !== undefined && (exit.code === 2 || !slot.everReady)) {
      slot.state = "stopped";
      this.#log.error(
        `The child of ${where} (pid {pid}) could not start: ${how}; not restarting it`,
        fields,
      );
      this.#onFatal(slot.group, exit);
      return;
    }
    const delayMs = this.#nextDelay(slot, uptimeMs);
    this.#log.warn(
      `The child of ${where} (pid {pid}) died: ${how} after {uptimeMs} ms; ` +
        "restarting in {delayMs} ms",
      { ...fields, uptimeMs: Math.round(uptimeMs), delayMs },
    );
    this.#scheduleRestart(slot, delayMs);
  }

  /** The delay before the next start; a long uptime forgives earlier crashes. */
  #nextDelay(slot: Slot, uptimeMs: number): number {
    if (uptimeMs >= this.#policy.resetAfterMs) slot.failures = 0;
    const { initialMs, maxMs } = this.#policy;
    const delayMs = Math.min(maxMs, initialMs * 2 ** slot.failures);
    // Stop counting once at the cap, so the exponent never overflows.
    if (delayMs < maxMs) slot.failures++;
    return delayMs;
  }

  #scheduleRestart(slot: Slot, delayMs: number): void {
    slot.state = "backoff";
    slot.restartInMs = delayMs;
    slot.timer = this.#clock.setTimeout(() => this.#spawn(slot), delayMs);
  }

  async #stopAll(graceMs: number): Promise<void> {
    const live: { slot: Slot; child: ChildHandle }[] = [];
    for (const slot of this.#slots) {
      slot.timer?.cancel();
      delete slot.timer;
      delete slot.restartInMs;
      if (slot.child === undefined) {
        slot.state = "stopped";
        continue;
      }
      slot.state = "stopping";
      live.push({ slot, child: slot.child });
    }
    if (live.length === 0) return;
    this.#log.info("Stopping {count} child process(es); grace {graceMs} ms", {
      count: live.length,
      graceMs,
    });
    for (const { child } of live) kill(child, "SIGTERM");
    const allExited = Promise.all(live.map(({ child }) => child.exited));
    let timer: TimerHandle | undefined;
    const graceOver = new Promise<"grace over">((resolve) => {
      timer = this.#clock.setTimeout(() => resolve("grace over"), Math.max(0, graceMs));
    });
    const first = await Promise.race([allExited, graceOver]);
    timer?.cancel();
    if (first === "grace over") {
      for (const { slot, child } of live) {
        if (slot.child !== child) continue;
        this.#log.warn(
          `The child of ${this.#where(slot)[0]} (pid {pid}) did not stop within {graceMs} ms; ` +
            "sending SIGKILL",
          { ...this.#where(slot)[1], pid: child.pid, graceMs },
        );
        kill(child, "SIGKILL");
      }
      await allExited;
    }
    // Each exit handler was attached at spawn, before `allExited`: every slot is settled here.
  }
}

function kill(child: ChildHandle, signal: ChildSignal): void {
  try {
    child.kill(signal);
  } catch {
    // Already gone: its exit is reported through `exited`.
  }
}
