/**
 * The `stage` command line.
 *
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { type CliCommand, parseCli, USAGE, UsageError } from "./cli_args.ts";
import type { CliIo } from "./cli_io.ts";
import { checkCommand } from "./check_command.ts";
import { newCommand } from "./new_command.ts";
import { ExitCode, runCommand } from "./run_command.ts";

export { type CliCommand, parseCli, USAGE, UsageError } from "./cli_args.ts";
export { type CliIo, denoCliIo } from "./cli_io.ts";
export { ExitCode } from "./run_command.ts";

/** The version of this build. */
export const VERSION: string = denoJson.version;

/**
 * Runs the `stage` command line and resolves with the exit code
 * (0 ok, 1 failure, 2 usage or config error).
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let cli: CliCommand;
  try {
    cli = parseCli(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`stage: ${error.message}`);
    io.err(USAGE);
    return ExitCode.Usage;
  }
  switch (cli.command) {
    case "version":
      io.out(`stage ${VERSION} (deno ${Deno.version.deno})`);
      return ExitCode.Ok;
    case "help":
      io.out(USAGE);
      return ExitCode.Ok;
    case "check":
      return await checkCommand(cli, io);
    case "run":
      return await runCommand(cli, io);
    case "new":
      return await newCommand(cli, io);
  }
}
