/**
 * The Deno adapter of the supervisor: starts a group's child process (this very
 * program again, with `--group <n>`), and the child's half of the pipe protocol.
 *
 * The orphan rule: a child's standard input is a pipe from its supervisor that
 * the supervisor never writes to. When the supervisor dies, however it dies
 * (even SIGKILL), the kernel closes the pipe, the child reads end-of-file and
 * stops gracefully. So no child outlives its supervisor.
 *
 * @module
 */
import process from "node:process";
import type { ChildExit, ChildHandle, ChildLauncher, ChildSignal } from "./supervisor.ts";

/** Set to `1` in a child's environment: it was started by a supervisor and watches its stdin. */
export const SUPERVISED_ENV = "STAGE_SUPERVISED";
/** Set to the group index in a child's environment (informational, for scripts and tools). */
export const GROUP_ENV = "STAGE_GROUP";
/** Set for children of a supervisor: the socket file of its local bus hub. */
export const BUS_ENV = "STAGE_BUS";

/**
 * The Deno flags a child gets when the supervisor's own cannot be read (outside
 * Linux): those of `deno task start`.
 */
export const DEFAULT_DENO_FLAGS: readonly string[] = [
  "-A",
  "--unstable-worker-options",
  "--unstable-net",
];

/** How to start this program again: an executable and the arguments before `stage`'s own. */
export interface SelfCommand {
  execPath: string;
  /** e.g. `["run", "-A", "--unstable-net", "file:///app/main.ts"]`; empty for a compiled binary. */
  prefix: string[];
}

/** What {@link selfCommand} reads from the running program. */
export interface RuntimeFacts {
  /** `Deno.execPath()`. */
  execPath: string;
  /** `Deno.mainModule`. */
  mainModule: string;
  /** Whether this is a `deno compile` binary. */
  compiled: boolean;
  /** `Deno.args`: the program's own arguments. */
  args: readonly string[];
  /** The full command line (`/proc/self/cmdline`), when the platform has one. */
  cmdline?: readonly string[];
}

// Flags that must not be repeated in a child: a second inspector on the same port
// fails, and a watcher would restart the child behind the supervisor's back.
const NOT_INHERITED = /^--(inspect|inspect-brk|inspect-wait|watch|watch-hmr|hmr)(=|$)/;

/**
 * Works out how to start this program again. A compiled binary is started as
 * itself. Under `deno run`, the runtime's own flags are taken from the command
 * line (everything between the executable and the main module), so a child gets
 * exactly the supervisor's permissions and unstable flags; the main module is
 * named by its absolute URL. Without a readable command line, the flags are
 * {@link DEFAULT_DENO_FLAGS}.
 *
 * @example
 * ```ts
 * import { selfCommand } from "./child_launcher.ts";
 * const self = selfCommand({
 *   execPath: "/usr/bin/deno",
 *   mainModule: "file:///app/main.ts",
 *   compiled: false,
 *   args: ["run", "--supervise"],
 *   cmdline: ["deno", "run", "--allow-all", "main.ts", "run", "--supervise"],
 * });
 * if (self.prefix.join(" ") !== "run --allow-all file:///app/main.ts") throw new Error("flags kept");
 * ```
 */
export function selfCommand(facts: RuntimeFacts): SelfCommand {
  if (facts.compiled) return { execPath: facts.execPath, prefix: [] };
  const { cmdline, args } = facts;
  if (cmdline !== undefined && cmdline.length >= args.length + 2) {
    const tail = cmdline.slice(cmdline.length - args.length);
    if (tail.every((arg, i) => arg === args[i])) {
      // [deno, ...runtime flags, main module, ...args]
      const flags = cmdline.slice(1, cmdline.length - args.length - 1);
      return {
        execPath: facts.execPath,
        prefix: [...flags.filter((flag) => !NOT_INHERITED.test(flag)), facts.mainModule],
      };
    }
  }
  return { execPath: facts.execPath, prefix: ["run", ...DEFAULT_DENO_FLAGS, facts.mainModule] };
}

/** What a child is told on its command line, besides its group. */
export interface ChildArgs {
  /** The absolute path of the config file. */
  config: string;
  transpile: boolean;
  workers?: number;
  /** The script arguments (after `--`). */
  args: readonly string[];
}

/**
 * The `stage` arguments of a group's child:
 * `run --config <path> --group <n> [--transpile] [--workers <n>] [-- <args>]`.
 *
 * @example
 * ```ts
 * import { childArgs } from "./child_launcher.ts";
 * const argv = childArgs(1, { config: "/app/stage.json", transpile: false, args: ["x"] });
 * if (argv.join(" ") !== "run --config /app/stage.json --group 1 -- x") throw new Error(argv.join(" "));
 * ```
 */
export function childArgs(group: number, options: ChildArgs): string[] {
  return [
    "run",
    "--config",
    options.config,
    "--group",
    String(group),
    ...(options.transpile ? ["--transpile"] : []),
    ...(options.workers === undefined ? [] : ["--workers", String(options.workers)]),
    ...(options.args.length === 0 ? [] : ["--", ...options.args]),
  ];
}

/** Reads what {@link selfCommand} needs from the running Deno program. */
export function currentRuntime(compiled: boolean): RuntimeFacts {
  let cmdline: string[] | undefined;
  try {
    // NUL-separated, with a trailing NUL. Read before anything sets the process title,
    // which overwrites this memory.
    const text = Deno.readTextFileSync("/proc/self/cmdline");
    cmdline = text.split("\0").slice(0, -1);
  } catch {
    cmdline = undefined; // not Linux, or no /proc
  }
  return {
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
    compiled,
    args: Deno.args,
    ...(cmdline === undefined ? {} : { cmdline }),
  };
}

/**
 * Starts children with `Deno.Command`: the same program, `stage` arguments from
 * {@link childArgs}, the supervisor's environment plus `STAGE_GROUP` and
 * `STAGE_SUPERVISED=1`, standard output and error inherited (the children's log
 * lines are the supervisor's output), standard input a pipe the supervisor holds
 * open (the orphan rule). Each child runs in its own session, so a Ctrl-C in a
 * terminal reaches only the supervisor, which then stops the children itself.
 */
export class DenoChildLauncher implements ChildLauncher {
  readonly #self: SelfCommand;
  readonly #args: ChildArgs;
  readonly #env: Record<string, string>;

  /** @param env more environment for every child (e.g. the bus hub's socket, {@link BUS_ENV}) */
  constructor(self: SelfCommand, args: ChildArgs, env: Record<string, string> = {}) {
    this.#self = self;
    this.#args = args;
    this.#env = env;
  }

  /** The full command line of group `group`'s child (for logs and tests). */
  commandLine(group: number): string[] {
    return [this.#self.execPath, ...this.#self.prefix, ...childArgs(group, this.#args)];
  }

  spawn(group: number): ChildHandle {
    const [execPath, ...args] = this.commandLine(group);
    const child = new Deno.Command(execPath!, {
      args,
      env: { ...this.#env, [GROUP_ENV]: String(group), [SUPERVISED_ENV]: "1" },
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
      detached: true,
    }).spawn();
    const exited: Promise<ChildExit> = child.status.then(
      (status) => ({ code: status.signal === null ? status.code : null, signal: status.signal }),
      () => ({ code: null, signal: null }),
    ).then(async (exit) => {
      await child.stdin.close().catch(() => {}); // the child is gone; release our end
      return exit;
    });
    return {
      pid: child.pid,
      exited,
      kill(signal: ChildSignal) {
        try {
          child.kill(signal);
        } catch {
          // already exited
        }
      },
    };
  }
}

/**
 * The child's half of the orphan rule: resolves when standard input reaches
 * end-of-file (or fails), i.e. when the supervisor holding its other end is gone.
 * Only for children started with `STAGE_SUPERVISED=1`: a terminal's or
 * `/dev/null`'s stdin means nothing here.
 */
export async function untilStdinCloses(
  stdin: ReadableStream<Uint8Array> = Deno.stdin.readable,
): Promise<void> {
  try {
    for await (const _ of stdin) {
      // The supervisor never writes; anything that arrives is ignored.
    }
  } catch {
    // A read error means the same as end-of-file: nobody is on the other end.
  }
}

/** Names this process in `ps` and `top`, e.g. `stage[1]`. */
export function setProcessTitle(title: string): void {
  // Checked together with core/api's script globals, `process.title` reads as read-only.
  (process as { title: string }).title = title;
}
