/**
 * `stage check`: validate the config and type-check every script on its
 * package path (with `deno check` where Deno is available; a compiled binary
 * can only check syntax, by transpiling).
 *
 * @module
 */
import { join } from "node:path";
import { isCompiledBinary, stripTypes } from "../script/mod.ts";
import type { CliCommand } from "./cli_args.ts";
import type { CliIo } from "./cli_io.ts";
import { ExitCode, loadConfigOrReport } from "./run_command.ts";

const SCRIPT_FILE = /\.(ts|tsx|mts|js|mjs)$/;

/** Every script file under `dirs` (recursively), sorted. */
export async function listScripts(dirs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && SCRIPT_FILE.test(entry.name) && !entry.name.endsWith(".d.ts")) {
        files.push(path);
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return files.sort();
}

/** Runs `stage check`; resolves with the exit code. */
export async function checkCommand(
  cli: Extract<CliCommand, { command: "check" }>,
  io: CliIo,
): Promise<number> {
  const config = await loadConfigOrReport(cli.config, io);
  if (config === undefined) return ExitCode.Usage;
  io.out(`config ${config.configPath}: ok`);
  const dirs = [...config.script.packages];
  if (config.script.preload !== undefined) dirs.push(config.script.preload);
  const files = await listScripts(dirs);
  if (files.length === 0) {
    io.out("no scripts found on the package path");
    return ExitCode.Ok;
  }
  if (isCompiledBinary() || cli.transpile) {
    let failed = 0;
    for (const file of files) {
      try {
        stripTypes(await Deno.readTextFile(file), `file://${file}`);
      } catch (error) {
        failed++;
        io.err(error instanceof Error ? error.message : String(error));
      }
    }
    io.out(
      `${
        files.length - failed
      }/${files.length} scripts parse (syntax only: type-checking needs deno)`,
    );
    return failed === 0 ? ExitCode.Ok : ExitCode.Failure;
  }
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", ...files],
    // Plain `at file:///…/start.ts:3:7` positions in captured output, not colour codes
    // between file and line; no Rust backtrace after the diagnostics.
    env: io.isTerminal ? { RUST_BACKTRACE: "0" } : { NO_COLOR: "1", RUST_BACKTRACE: "0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const output = (decoder.decode(result.stdout) + decoder.decode(result.stderr)).trim();
  if (output.length > 0) io.err(output);
  io.out(`${files.length} scripts: ${result.success ? "type-check ok" : "type errors"}`);
  return result.success ? ExitCode.Ok : ExitCode.Failure;
}
