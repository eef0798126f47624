/**
 * Reading and validating `config/stage.json`.
 *
 * @module
 */

import { resolve } from "node:path";
import { ConfigError } from "./config_error.ts";
import { type EnvLookup, substituteEnv } from "./env_substitution.ts";
import { normalizeConfig } from "./_normalize.ts";
import { parseRelaxedJson } from "./_relaxed_json.ts";
import { reportIssues } from "./_report_issues.ts";
import { stageConfigSchema } from "./schema.ts";
import type { StageConfig } from "./stage_config.ts";

/**
 * Parses, substitutes, validates and normalises config text. Pure apart from
 * resolving a relative `configPath` against the working directory.
 *
 * The text is JSON that may contain `//` and `/* *\/` comments and trailing
 * commas. `${VAR}`, `${VAR:-default}` and `$${literal}` in string values are
 * expanded through `env` (default: no variable is set). Relative paths
 * (`%package`, `%preload`, `%permissions` read/write, index `path`) resolve
 * against the config file's folder.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./load_config.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig(
 *   `{ "#threads": [4], "script": { "%package": "scripts", "script+game": "game" } }`,
 *   "/srv/game/config/stage.json",
 * );
 * assert.deepEqual(config.threads, { workers: 4, maxPending: 10000 });
 * assert.deepEqual(config.script.packages, ["/srv/game/config/scripts"]);
 * assert.deepEqual(config.startup, [[{ kind: "script", id: "game" }]]);
 * ```
 *
 * @param text the file's content
 * @param configPath the file's path, named in errors and used to resolve relative paths
 * @param env environment lookup for `${VAR}` substitution
 * @throws {ConfigError} on a syntax error, a missing variable or an invalid setting
 */
export function parseConfig(
  text: string,
  configPath: string,
  env: EnvLookup = () => undefined,
): StageConfig {
  const parsed = parseRelaxedJson(text, configPath);
  const substituted = substituteEnv(parsed, env, { file: configPath });
  const result = stageConfigSchema.safeParse(substituted);
  if (!result.success) throw reportIssues(result.error.issues, substituted, configPath);
  return normalizeConfig(result.data, resolve(configPath), substituted);
}

/**
 * Reads and parses a config file (see {@linkcode parseConfig}).
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./load_config.ts";
 *
 * const config = await loadConfig("config/stage.json");
 * ```
 *
 * @param path the config file
 * @param env environment lookup for `${VAR}` substitution (default: the process environment)
 * @throws {ConfigError} if the file cannot be read or is invalid
 */
export async function loadConfig(
  path: string,
  env: EnvLookup = (name) => Deno.env.get(name),
): Promise<StageConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new ConfigError({
      file: path,
      path: "",
      expected: "a readable config file",
      found: error instanceof Error ? error.name : String(error),
      detail: `cannot read the file: ${error instanceof Error ? error.message : String(error)}`,
    }, { cause: error });
  }
  return parseConfig(text, path, env);
}
