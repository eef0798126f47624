/**
 * `${ENV_VAR}` substitution in configuration string values.
 *
 * @module
 */

import { ConfigError, formatKeyPath } from "./config_error.ts";

/** Looks up an environment variable; `undefined` when it is not set. */
export type EnvLookup = (name: string) => string | undefined;

/** Options for {@linkcode substituteEnv}. */
export interface SubstituteEnvOptions {
  /** The config file named in errors (default `"config"`). */
  file?: string;
}

const REFERENCE = /\$(\$?)\{([^}]*)\}|\$\{/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Returns a copy of `value` in which every string value (recursively; object
 * keys untouched) has its environment references replaced:
 *
 * - `${NAME}` → the variable's value; an unset variable is an error;
 * - `${NAME:-default}` → the value, or `default` when unset or empty
 *   (`default` runs to the first `}` and is not itself expanded);
 * - `$${NAME}` → the literal text `${NAME}` (the escape).
 *
 * A `$` not followed by `{` is left as is.
 *
 * @example
 * ```ts
 * import { substituteEnv } from "./env_substitution.ts";
 * import assert from "node:assert/strict";
 *
 * const env = (name: string) => name === "TOKEN" ? "s3cret" : undefined;
 * assert.deepEqual(
 *   substituteEnv({ "#admin": { token: "${TOKEN}", listen: "${HOST:-127.0.0.1}:8800" } }, env),
 *   { "#admin": { token: "s3cret", listen: "127.0.0.1:8800" } },
 * );
 * assert.equal(substituteEnv("$${TOKEN}", env), "${TOKEN}");
 * ```
 *
 * @param value parsed JSON (objects, arrays, strings, numbers, booleans, null)
 * @param env where variables are looked up
 * @param options the file name for error messages
 * @throws {ConfigError} naming the key path when a variable is unset, cannot
 *   be read (the lookup threw; it becomes the `cause`) or a reference is malformed: `#admin.token: environment variable STAGE_ADMIN_TOKEN is not set`
 */
export function substituteEnv(
  value: unknown,
  env: EnvLookup,
  options: SubstituteEnvOptions = {},
): unknown {
  return substitute(value, env, options.file ?? "config", []);
}

function substitute(
  value: unknown,
  env: EnvLookup,
  file: string,
  path: (string | number)[],
): unknown {
  if (typeof value === "string") return expand(value, env, file, path);
  if (Array.isArray(value)) {
    return value.map((item, index) => substitute(item, env, file, [...path, index]));
  }
  if (typeof value === "object" && value !== null) {
    // fromEntries defines own properties, so a "__proto__" key stays data.
    return Object.fromEntries(
      Object.entries(value).map((
        [key, item],
      ) => [key, substitute(item, env, file, [...path, key])]),
    );
  }
  return value;
}

function expand(text: string, env: EnvLookup, file: string, path: (string | number)[]): string {
  if (!text.includes("${")) return text;
  return text.replace(REFERENCE, (match: string, escape?: string, body?: string) => {
    if (body === undefined) {
      throw fail(file, path, text, `"\${" without a closing "}" in ${JSON.stringify(text)}`);
    }
    if (escape === "$") return match.slice(1);
    const separator = body.indexOf(":-");
    const name = separator < 0 ? body : body.slice(0, separator);
    if (!NAME.test(name)) {
      throw fail(
        file,
        path,
        text,
        `${JSON.stringify(match)} does not name an environment variable (letters, digits, _)`,
      );
    }
    let found: string | undefined;
    try {
      found = env(name);
    } catch (error) {
      // e.g. NotCapable without --allow-env: still a config failure, with its cause.
      throw fail(
        file,
        path,
        text,
        `cannot read environment variable ${name}: ${
          error instanceof Error ? error.message : String(error)
        }`,
        name,
        error,
      );
    }
    if (separator >= 0) {
      return found === undefined || found === "" ? body.slice(separator + 2) : found;
    }
    if (found === undefined) {
      throw fail(file, path, text, `environment variable ${name} is not set`, name);
    }
    return found;
  });
}

function fail(
  file: string,
  path: (string | number)[],
  text: string,
  detail: string,
  variable?: string,
  cause?: unknown,
): ConfigError {
  return new ConfigError({
    file,
    path: formatKeyPath(path),
    expected: variable === undefined
      ? "${NAME} or ${NAME:-default} references"
      : `environment variable ${variable} to be set`,
    found: JSON.stringify(text),
    detail,
  }, cause === undefined ? undefined : { cause });
}
