/**
 * `stage run`: load the config, start the stages, run until SIGINT/SIGTERM,
 * stop gracefully.
 *
 * @module
 */
import { ConfigError, loadConfig, type StageConfig } from "../config/mod.ts";
import { startProcess } from "../cluster/mod.ts";
import { coreLogger, defaultLogOptions, setupLogging } from "../log/mod.ts";
import { isCompiledBinary } from "../script/mod.ts";
import type { CliCommand } from "./cli_args.ts";
import type { CliIo } from "./cli_io.ts";

/** Exit codes of `stage`. */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2 } as const;

/**
 * Loads and validates the config; a bad config is reported on standard error
 * as one line naming the key path, the expectation and the found value.
 */
export async function loadConfigOrReport(
  path: string,
  io: CliIo,
): Promise<StageConfig | undefined> {
  try {
    return await loadConfig(path, io.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.err(`stage: invalid config: ${error.message}`);
      return undefined;
    }
    if (error instanceof Deno.errors.NotFound) {
      io.err(`stage: config file not found: ${path}`);
      return undefined;
    }
    throw error;
  }
}

/** Runs `stage run`; resolves with the exit code. */
export async function runCommand(
  cli: Extract<CliCommand, { command: "run" }>,
  io: CliIo,
): Promise<number> {
  const logOptions = defaultLogOptions(io.env);
  const resolved = {
    ...logOptions,
    format: logOptions.format === "auto" ? (io.isTerminal ? "pretty" : "json") : logOptions.format,
  } as const;
  setupLogging(resolved, io.isTerminal);
  const log = coreLogger("cluster");
  // Listen for signals before anything starts, so an early Ctrl-C still stops gracefully.
  const stopRequested = io.shutdownSignal();
  const config = await loadConfigOrReport(cli.config, io);
  if (config === undefined) return ExitCode.Usage;
  const transpile = cli.transpile || isCompiledBinary();
  log.info("Stage starting: config {config}, {groups} process group(s), scripts {mode}", {
    config: config.configPath,
    groups: config.startup.length,
    mode: transpile ? "transpiled" : "imported natively",
  });
  let running;
  try {
    running = await startProcess(config, {
      transpile,
      args: cli.args,
      logOptions: resolved,
      log,
      ...(cli.workers === undefined ? {} : { workers: cli.workers }),
    });
  } catch (error) {
    log.fatal("Stage failed to start: {error}", { error });
    return ExitCode.Failure;
  }
  log.info("Stage running (pid {pid}); stop with Ctrl-C or SIGTERM", { pid: Deno.pid });
  const signal = await stopRequested;
  log.info("Stage stopping on {signal}", { signal });
  await running.stop();
  log.info("Stage stopped");
  return ExitCode.Ok;
}
