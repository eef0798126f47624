// deno-lint-ignore-file no-console
/**
 * `deno task bench <name> [args...]`: runs `tests/bench/<name>_bench.ts`, whose
 * exported `run(args)` prints one JSON line per scenario.
 *
 * With no name or an unknown one, prints the available names to standard error
 * and exits 2.
 *
 * @module
 */

/** The contract every `<name>_bench.ts` module fulfils. */
export interface BenchModule {
  run(args: string[]): Promise<void>;
}

const SUFFIX = "_bench.ts";

/** The names of the benchmarks in this folder (`echo` for `echo_bench.ts`), sorted. */
export async function benchNames(dir: URL = new URL(".", import.meta.url)): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(SUFFIX) && entry.name.length > SUFFIX.length) {
      names.push(entry.name.slice(0, -SUFFIX.length));
    }
  }
  return names.sort();
}

function isBenchModule(value: unknown): value is BenchModule {
  return typeof value === "object" && value !== null &&
    typeof (value as { run?: unknown }).run === "function";
}

async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const names = await benchNames();
  if (name === undefined || !names.includes(name)) {
    if (name !== undefined) console.error(`bench: unknown benchmark ${JSON.stringify(name)}`);
    console.error("usage: deno task bench <name> [args...]");
    console.error(`available: ${names.length === 0 ? "(none)" : names.join(", ")}`);
    return 2;
  }
  const module: unknown = await import(new URL(`./${name}${SUFFIX}`, import.meta.url).href);
  if (!isBenchModule(module)) {
    console.error(`bench: ${name}${SUFFIX} does not export run(args: string[]): Promise<void>`);
    return 2;
  }
  await module.run(rest);
  return 0;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code !== 0) Deno.exit(code);
}
