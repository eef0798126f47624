/**
 * `stage` — the Stage server platform's command line: `stage run|check|new|version|help`.
 *
 * @module
 */
import { denoCliIo, main } from "./core/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args, denoCliIo()));
}
