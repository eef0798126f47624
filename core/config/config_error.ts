/**
 * The one error every configuration failure is reported as.
 *
 * @module
 */

/** What a {@linkcode ConfigError} reports. */
export interface ConfigErrorInit {
  /** The config file as the user named it (e.g. `config/stage.json`). */
  file: string;
  /** Key path of the offending value, e.g. `#threads[0]` or `script.%package`; `""` = the whole file. */
  path: string;
  /** What the value should have been, e.g. `a positive integer`. */
  expected: string;
  /** What was there, e.g. `"four"`. */
  found: string;
  /** Replaces the `expected …, found …` sentence in the message when set. */
  detail?: string;
  /** 1-based line of a JSON syntax error. */
  line?: number;
  /** 1-based column of a JSON syntax error. */
  column?: number;
  /** How many other problems were found besides this one. */
  more?: number;
}

/**
 * A configuration file could not be read, parsed or validated. The message
 * names the file, the key path, what was expected and what was found:
 * `config/stage.json: #threads[0]: expected a positive integer, found "four"`.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./config_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ConfigError({
 *   file: "config/stage.json",
 *   path: "#threads[0]",
 *   expected: "a positive integer",
 *   found: '"four"',
 * });
 * assert.equal(error.message, 'config/stage.json: #threads[0]: expected a positive integer, found "four"');
 * ```
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** The config file as the user named it. */
  readonly file: string;
  /** Key path of the offending value; `""` means the whole file. */
  readonly path: string;
  /** What the value should have been. */
  readonly expected: string;
  /** What was found instead. */
  readonly found: string;
  /** 1-based line, for JSON syntax errors. */
  readonly line: number | undefined;
  /** 1-based column, for JSON syntax errors. */
  readonly column: number | undefined;

  /**
   * @param init what went wrong and where
   * @param options standard error options (`cause`)
   */
  constructor(init: ConfigErrorInit, options?: ErrorOptions) {
    const location = init.line === undefined ? "" : `:${init.line}:${init.column ?? 1}`;
    const where = init.path === "" ? "" : `${init.path}: `;
    const what = init.detail ?? `expected ${init.expected}, found ${init.found}`;
    const more = init.more === undefined || init.more === 0
      ? ""
      : ` (and ${init.more} more problem${init.more === 1 ? "" : "s"})`;
    super(`${init.file}${location}: ${where}${what}${more}`, options);
    this.file = init.file;
    this.path = init.path;
    this.expected = init.expected;
    this.found = init.found;
    this.line = init.line;
    this.column = init.column;
  }
}

/**
 * Formats a key path: keys joined by `.`, array indexes as `[n]`; a key that
 * could be misread (contains `.`, brackets, quotes, spaces…) is JSON-quoted.
 *
 * @example
 * ```ts
 * import { formatKeyPath } from "./config_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatKeyPath(["#threads", 0]), "#threads[0]");
 * assert.equal(formatKeyPath(["script", "%package", 1]), "script.%package[1]");
 * assert.equal(formatKeyPath(["agent+a.b", "timeout"]), '"agent+a.b".timeout');
 * ```
 *
 * @param path the keys and indexes from the top of the file
 */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") {
      text += `[${segment}]`;
      continue;
    }
    const key = String(segment);
    const written = /^[#%=+@\w-]+$/.test(key) ? key : JSON.stringify(key);
    text += text === "" ? written : `.${written}`;
  }
  return text;
}

/**
 * Describes a found value for an error message: strings quoted, short
 * arrays and objects as compact JSON, long ones summarised, `undefined` as
 * `nothing` (the key is absent).
 *
 * @example
 * ```ts
 * import { describeValue } from "./config_error.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeValue("four"), '"four"');
 * assert.equal(describeValue([1, 2]), "[1,2]");
 * assert.equal(describeValue(undefined), "nothing");
 * ```
 *
 * @param value the value found in the configuration
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  if (typeof value !== "object" || value === null) return String(value);
  const json = JSON.stringify(value);
  if (json.length <= 60) return json;
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  return `an object with keys ${Object.keys(value).slice(0, 4).join(", ")}${
    Object.keys(value).length > 4 ? ", ..." : ""
  }`;
}
