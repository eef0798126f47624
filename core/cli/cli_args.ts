/**
 * Command-line parsing of `stage`.
 *
 * @module
 */

/** A parsed command line. */
export type CliCommand =
  | {
    command: "run";
    config: string;
    /** `--single`: every `#startup` group in this process (development, tests). */
    single: boolean;
    /**
     * Supervisor mode — the default, or `--supervise`: one child process per
     * `#startup` group, restarted when it dies. False with `--single` or `--group`.
     */
    supervise: boolean;
    /** `--group <n>`: run only that `#startup` group (how the supervisor starts a child). */
    group?: number;
    transpile: boolean;
    workers?: number;
    args: string[];
  }
  | { command: "check"; config: string; transpile: boolean }
  /** `stage new <dir>`: scaffold a project into `dir` (which must be absent or empty). */
  | { command: "new"; dir: string }
  | { command: "version" }
  | { command: "help" };

/** Raised for a malformed command line (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The default config path, relative to the working directory. */
export const DEFAULT_CONFIG = "config/stage.json";

/** Usage text of `stage help`. */
export const USAGE = `Usage: stage <command> [options]

Commands:
  run      start the stages of config/stage.json: a supervisor with one child process
           per #startup group (or every group in this process with --single)
  check    validate the config and type-check the scripts on its package path
  new      stage new <dir>: scaffold a project in <dir> (absent or empty): a config,
           a start script, its type declarations, a deno.json and an example test
  version  print the version
  help     print this help

Options (run, check):
  --config <file>   the stage.json to use (default ${DEFAULT_CONFIG}; the last one given wins)
  --transpile       import scripts through the transpiler (what a compiled binary does);
                    also STAGE_TRANSPILE=1
Options (run):
  --single          run every #startup group in this one process (development, tests)
  --supervise       the default: a supervisor of one child process per #startup group,
                    restarted with backoff when it dies, stopped gracefully on SIGINT/SIGTERM
  --group <n>       run only #startup group n (an index from 0; what --supervise starts)
  --workers <n>     override #threads[0]
  -- <args...>      arguments for scripts (process.args)
`;

/**
 * Parses `stage` arguments.
 *
 * @throws UsageError for an unknown command or option, or a missing value
 * @example
 * ```ts
 * import { parseCli } from "./cli_args.ts";
 * const cli = parseCli(["run", "--config", "a.json", "--config", "b.json"]);
 * if (cli.command !== "run" || cli.config !== "b.json") throw new Error("last --config wins");
 * ```
 */
export function parseCli(
  argv: readonly string[],
  env: (name: string) => string | undefined = () => undefined,
): CliCommand {
  const [command = "help", ...rest] = argv;
  if (command === "version" || command === "--version" || command === "-V") {
    return { command: "version" };
  }
  if (command === "help" || command === "--help" || command === "-h") return { command: "help" };
  if (command === "new") return parseNew(rest);
  if (command !== "run" && command !== "check") {
    throw new UsageError(
      `Unknown command "${command}"; expected run, check, new, version or help`,
    );
  }
  let config = DEFAULT_CONFIG;
  let single = false;
  let supervise = false;
  let group: number | undefined;
  let transpile = env("STAGE_TRANSPILE") === "1";
  let workers: number | undefined;
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const value = () => {
      const next = rest[++i];
      if (next === undefined) throw new UsageError(`Option ${arg} needs a value`);
      return next;
    };
    if (arg === "--") {
      args.push(...rest.slice(i + 1));
      break;
    } else if (arg === "--config" || arg === "-c") config = value();
    else if (arg.startsWith("--config=")) config = arg.slice("--config=".length);
    else if (arg === "--transpile") transpile = true;
    else if (arg === "--single" && command === "run") single = true;
    else if (arg === "--supervise" && command === "run") supervise = true;
    else if (arg === "--group" && command === "run") {
      const text = value();
      if (!/^\d{1,6}$/.test(text)) {
        throw new UsageError(`--group expects a #startup group index (0, 1, …); got "${text}"`);
      }
      group = Number(text);
    } else if (arg === "--workers" && command === "run") {
      const text = value();
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1 || n > 256) {
        throw new UsageError(`--workers expects an integer 1..256; got "${text}"`);
      }
      workers = n;
    } else throw new UsageError(`Unknown option "${arg}" for "${command}"`);
  }
  if (command === "check") return { command, config, transpile };
  const modes = [single && "--single", supervise && "--supervise", group !== undefined && "--group"]
    .filter((mode) => mode !== false);
  if (modes.length > 1) {
    throw new UsageError(`Options ${modes.join(" and ")} cannot be combined; choose one`);
  }
  return {
    command,
    config,
    single,
    supervise: supervise || (!single && group === undefined),
    ...(group === undefined ? {} : { group }),
    transpile,
    ...(workers === undefined ? {} : { workers }),
    args,
  };
}

/** `stage new <dir>`: exactly one argument, not an option. */
function parseNew(rest: readonly string[]): CliCommand {
  const [dir, ...extra] = rest;
  if (dir === undefined || dir === "") {
    throw new UsageError("stage new needs a directory: stage new <dir>");
  }
  if (dir.startsWith("-")) throw new UsageError(`Unknown option "${dir}" for "new"`);
  if (extra.length > 0) {
    throw new UsageError(
      `stage new takes one directory; got ${JSON.stringify(extra[0])} after "${dir}"`,
    );
  }
  return { command: "new", dir };
}
